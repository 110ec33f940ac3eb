"""Open-API benchmark: order ingestion and till redemption, against the bare endpoint
and against their raw-SQL floor, loaded by wrk.

    .venv/bin/python -m bench.open_api [--seconds 10] [--warmup 2] [--rounds 3]

See bench/README.md for what it measures and how to read it.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from bench.harness.main import add_options, options_from, run_suite
from bench.open_api.suite import OpenApiSuite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.open_api", description=__doc__)
    add_options(parser)
    parser.add_argument("--members", type=int, default=10_000, help="demo members seeded")
    parser.add_argument("--funded", type=int, default=2_000, help="members with one lot")
    parser.add_argument("--lots-members", type=int, default=2_000, help="members with 100 lots")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="GUNICORN_MAX_REQUESTS for both servers (0: workers are never replaced)",
    )
    args = parser.parse_args(argv)
    suite = OpenApiSuite(
        members=args.members,
        funded=args.funded,
        lots=args.lots_members,
        max_requests=args.max_requests,
    )
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", "-m", "bench.open_api", *given])
    return run_suite(suite, options_from(args), command, keep_logs=args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
