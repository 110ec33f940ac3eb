"""`python -m jobs`: run the scheduler until interrupted."""

from __future__ import annotations

import contextlib
import logging

from app import create_app
from jobs.scheduler import build_scheduler


def main() -> None:
    app = create_app()
    scheduler = build_scheduler(app)
    logging.getLogger("huiyuan.jobs").info("scheduler starting")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


if __name__ == "__main__":
    main()
