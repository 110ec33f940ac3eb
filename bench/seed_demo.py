"""How long `flask --app wsgi seed-demo --members N` takes on MariaDB.

    .venv/bin/python bench/seed_demo.py [--members 100000]

Creates a scratch database `huiyuan_seed_bench`, migrates it, times the seeding command
end to end (process start included), checks the rows, writes
bench/results/<date>-seed-demo.md and drops the database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLASK = str(ROOT / ".venv" / "bin" / "flask")
DATABASE = "huiyuan_seed_bench"
URL = f"mysql://root@127.0.0.1:3306/{DATABASE}"


def mariadb(sql: str, database: str = "") -> str:
    command = ["mariadb", "-uroot", "-h127.0.0.1", "-N", "-e", sql]
    if database:
        command.append(database)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def flask(*args: str) -> float:
    env = dict(os.environ, DATABASE_URL=URL, LOG_FORMAT="text")
    started = time.perf_counter()
    subprocess.run(
        [FLASK, "--app", "wsgi", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    members = parser.parse_args().members
    mariadb(f"DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
    try:
        flask("db", "upgrade")
        startup = flask("jobs", "list")  # the cost of starting the CLI, for reference
        seconds = flask(
            "seed-demo", "--members", str(members), "--story-members", "0", "--seed", "7"
        )
        counts = mariadb(
            "SELECT COUNT(*), COUNT(DISTINCT card_no), COUNT(phone), COUNT(DISTINCT phone)"
            " FROM members",
            DATABASE,
        )
        version = mariadb("SELECT VERSION()")
    finally:
        mariadb(f"DROP DATABASE IF EXISTS {DATABASE}")
    write_results(members, seconds, startup, counts, version)


def write_results(members: int, seconds: float, startup: float, counts: str, version: str) -> None:
    total, cards, phones, distinct_phones = (int(n) for n in counts.split())
    today = dt.date.today().isoformat()
    rows = (
        f"{total:,} ({cards:,} distinct card numbers; {phones:,} phones, "
        f"{distinct_phones:,} distinct)"
    )
    rate = f"**{seconds:.1f} s** ({total / seconds:,.0f} members/s)"
    path = ROOT / "bench" / "results" / f"{today}-seed-demo.md"
    path.write_text(
        f"""# seed-demo benchmark, {today}

`.venv/bin/python bench/seed_demo.py --members {members}`

| | |
| --- | --- |
| machine | {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()} |
| database | MariaDB {version} (local) |
| members seeded | {rows} |
| `seed-demo` wall time, process start included | {rate} |
| CLI start-up alone (`jobs list`) | {startup:.1f} s |

Batches of 5,000 rows, one multi-row INSERT and one transaction per batch; card
numbers and phones are checked against the database once per batch.
""",
        encoding="utf-8",
    )
    print(path.read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
