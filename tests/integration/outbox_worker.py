"""A drain in its own process, for the kill -9 test: two subscribers append what they
handle to a log file; with ``block_at`` set, the first one hangs on that event's number
(the test kills the process there)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session

from app.db import make_engine, make_session_factory
from app.outbox import services as outbox
from app.outbox.models import OutboxMessage
from app.outbox.rules import DrainPolicy
from app.outbox.services import Handler
from app.uow import UnitOfWork

TOPIC = "test.probe"


def main(database_url: str, log_path: str, block_at: int, lease_seconds: int) -> None:
    log = Path(log_path)

    def probe(name: str) -> Handler:
        def run(session: Session, message: OutboxMessage) -> str:
            if name == "probe.a" and message.payload["n"] == block_at:
                with log.open("a") as out:
                    out.write(f"blocking {message.id}\n")
                time.sleep(3600)
            with log.open("a") as out:  # the effect, before the delivery row commits
                out.write(f"{message.id} {name}\n")
            return "logged"

        return Handler(name, frozenset({TOPIC}), run)

    engine = make_engine(database_url)
    uow = UnitOfWork(make_session_factory(engine))
    policy = DrainPolicy(batch_size=50, lease_seconds=lease_seconds)
    result = outbox.drain(uow=uow, handlers=[probe("probe.a"), probe("probe.b")], policy=policy)
    print(result, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
