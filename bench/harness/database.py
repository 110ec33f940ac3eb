"""The scratch database and Redis of a run, and the invariants checked after the load.

Every run gets a fresh MariaDB database (dropped first if a crashed run left it, dropped
at the end whatever happens) and a Redis database of its own, flushed before and after,
so a run never meets another's rows or nonces and leaves nothing behind.

The points invariants hold for every member at every commit; after the load they are
re-checked for every member the run touched: the account's balance equals the sum of its
ledger entries and the points left in its open lots, and nothing is negative. Any path
that moves points (orders, redemptions, mall, lottery) must keep them under load.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import redis

MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"
REDIS_BASE = "redis://127.0.0.1:6379"


@dataclass(frozen=True)
class Scratch:
    """The run's database and Redis database, and the environment servers run in."""

    database: str = "huiyuan_bench"
    redis_db: int = 14

    @property
    def database_url(self) -> str:
        return f"mysql://{MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"{REDIS_BASE}/{self.redis_db}"

    def environment(self, **extra: str) -> dict[str, str]:
        """This process's environment without HUIYUAN_ENV (the development config), the
        scratch database and Redis, JSON logs, and ``extra``."""
        env = {name: value for name, value in os.environ.items() if name != "HUIYUAN_ENV"}
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis_url, LOG_FORMAT="json")
        env.update(extra)
        return env

    def connect(self, *, database: bool = True) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user=MYSQL_USER,
            database=self.database if database else None,
            autocommit=True,
            charset="utf8mb4",
        )

    @contextlib.contextmanager
    def cursor(self) -> Iterator[Any]:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=5)

    def create(self) -> str:
        """Drop any leftover, create afresh, flush Redis; answers the server's version."""
        connection = self.connect(database=False)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
                cursor.execute(
                    f"CREATE DATABASE `{self.database}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
                cursor.execute("SELECT VERSION()")
                version = str(cursor.fetchone()[0])
        finally:
            connection.close()
        self.redis().flushdb()
        return version

    def drop(self) -> None:
        """Each step on its own, so one failing does not skip the other."""
        try:
            connection = self.connect(database=False)
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
            finally:
                connection.close()
        finally:
            self.redis().flushdb()


@dataclass
class Invariants:
    """The points invariants of the members a run touched."""

    members: int = 0
    broken: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not self.broken

    def summary(self) -> str:
        if self.holds:
            return (
                f"hold for all {self.members:,} members touched: balance = SUM(entries.delta) "
                "= SUM(open lots' remaining), nothing negative"
            )
        shown = "; ".join(self.broken[:10])
        return f"BROKEN for {len(self.broken)} of {self.members:,} members: {shown}"


def points_invariants(cursor: Any, *, entries_after: int) -> Invariants:
    """Check every member with a ledger entry newer than ``entries_after`` (the highest
    entry id before the run)."""
    cursor.execute(
        "SELECT a.member_id, a.balance, a.debt, "
        "(SELECT COALESCE(SUM(e.delta), 0) FROM points_entries e "
        " WHERE e.member_id = a.member_id), "
        "(SELECT COALESCE(SUM(l.remaining), 0) FROM points_lots l "
        " WHERE l.member_id = a.member_id AND l.remaining > 0), "
        "(SELECT COUNT(*) FROM points_lots l WHERE l.member_id = a.member_id "
        " AND (l.remaining < 0 OR l.expired < 0)) "
        "FROM points_accounts a WHERE a.member_id IN "
        "(SELECT DISTINCT member_id FROM points_entries WHERE id > %s)",
        (entries_after,),
    )
    found = Invariants()
    for member_id, balance, debt, ledger, lots, negative in cursor.fetchall():
        found.members += 1
        if not (balance == ledger == lots and balance >= 0 and debt >= 0 and negative == 0):
            found.broken.append(
                f"member {member_id}: balance {balance}, entries {ledger}, lots {lots}, "
                f"debt {debt}, negative lots {negative}"
            )
    return found


def highest_id(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")  # noqa: S608 - a table name of the bench's own
    return int(cursor.fetchone()[0])
