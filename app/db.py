"""Declarative base, column types shared by every context, engine and sessions."""

from __future__ import annotations

import select
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymysql.constants import SERVER_STATUS
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    create_engine,
    make_url,
)
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from app import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Every MySQL table is utf8mb4 whatever the database's default: nicknames carry emoji.
MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}


def table_args(*items: Any) -> tuple[Any, ...]:
    """``__table_args__`` for a model with its own indexes or constraints."""
    return (*items, MYSQL_TABLE_OPTIONS)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    __table_args__: Any = MYSQL_TABLE_OPTIONS


# BIGINT keys on MySQL (10M members, 100M orders), INTEGER on SQLite so it autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class BinaryString(TypeDecorator[str]):
    """A string compared byte for byte: openids, codes, keys, card numbers.

    MySQL's default collations ignore case, and even ``utf8mb4_bin`` ignores trailing
    spaces ('x' = 'x '); these values must not. So a NO PAD binary collation:
    ``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL 8.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":
            collation = "utf8mb4_nopad_bin" if dialect.is_mariadb else "utf8mb4_0900_bin"
            return dialect.type_descriptor(
                mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation)
            )
        return dialect.type_descriptor(String(self.length))


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every backend, always returned timezone-aware (UTC)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "mysql":  # microseconds: events in one second keep their order
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class JSONDocument(TypeDecorator[Any]):
    """JSON stored as LONGTEXT-compatible JSON on MySQL, TEXT-backed JSON on SQLite."""

    impl = JSON
    cache_ok = True


@dataclass(frozen=True)
class Timeouts:
    """Seconds before a database that does not answer becomes an error (503), not a hang."""

    connect: int = 5
    read: int = 30
    write: int = 30
    pool: int = 10  # waiting for a free pooled connection

    @property
    def lock_wait(self) -> int:
        # A lock wait gives up (1205, retried by app.retry) well before the read timeout
        # would cut the connection and make a busy row look like an outage.
        return max(1, self.read * 2 // 3)


def make_engine(url: str, timeouts: Timeouts | None = None, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url, **kwargs)
    else:
        limits = timeouts or Timeouts()
        # No pre-ping round trip and no blind ROLLBACK on check-in: _check_on_checkout
        # and _reset_on_checkin below do both without asking the server.
        kwargs.setdefault("pool_pre_ping", False)
        kwargs.setdefault("pool_reset_on_return", None)
        kwargs.setdefault("pool_recycle", 3600)
        kwargs.setdefault("pool_timeout", limits.pool)
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        connect_args = {
            "connect_timeout": limits.connect,
            "read_timeout": limits.read,
            "write_timeout": limits.write,
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {limits.lock_wait:d}",
        }
        given = make_url(url).query  # what DATABASE_URL spells out itself wins
        kwargs.setdefault("connect_args", {k: v for k, v in connect_args.items() if k not in given})
        engine = create_engine(url, **kwargs)
        sa_event.listen(engine, "checkout", _check_on_checkout)
        sa_event.listen(engine, "reset", _reset_on_checkin)
    return engine


def _check_on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, wait_timeout, a killed
    thread) is readable while idle: the server's last packet or EOF waits on the socket.
    Seen without a round trip, it is replaced before the request uses it (the pool retries
    the checkout on DisconnectionError). A connection that dies mid-request is what
    ``app.retry`` retries."""
    sock = getattr(dbapi_conn, "_sock", None)
    if sock is None:
        raise sa_exc.DisconnectionError("the connection is closed")
    readable, _, _ = select.select([sock], [], [], 0)
    if readable:
        raise sa_exc.DisconnectionError("the server closed the connection")


def _reset_on_checkin(dbapi_conn: Any, _record: Any, state: Any) -> None:
    """Roll back only a connection that comes back inside a transaction (the server says
    so in every reply's status flags); after a COMMIT there is nothing to reset, and the
    pool's blind ROLLBACK would cost a round trip per request."""
    if state.terminate_only:
        return
    status = getattr(dbapi_conn, "server_status", SERVER_STATUS.SERVER_STATUS_IN_TRANS)
    if status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
        dbapi_conn.rollback()


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    if url in ("sqlite://", "sqlite:///:memory:"):
        kwargs.setdefault("poolclass", StaticPool)
    kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    engine = create_engine(url, **kwargs)

    @sa_event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy emits BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def newest_first(
    query: Select[Any], id_column: Any, *, before_id: int | None, limit: int
) -> Select[Any]:
    """One page of an API list (API.md: ``limit`` and ``cursor``): newest first, strictly
    before the cursor's id."""
    query = query.order_by(id_column.desc()).limit(limit)
    return query if before_id is None else query.where(id_column < before_id)


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Any]:
    kwargs.setdefault("expire_on_commit", False)
    return sessionmaker(bind=bind, **kwargs)


def utcnow_column_default() -> datetime:
    return clock.now()
