"""MariaDB connections without a pre-ping round trip or a blind ROLLBACK on check-in
(app.db): a pooled connection the server closed is replaced at checkout without asking
the server; one lost in the middle of a use case is retried by ``uow.run``; one lost at
COMMIT is not (the outcome is unknown); a connection returned inside a transaction is
still rolled back, one returned after COMMIT costs nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy import Engine, event, make_url, text

from app.db import make_engine, make_session_factory
from app.outages import is_outage
from app.retry import CommitOutcomeUnknown
from app.uow import UnitOfWork
from tests.support import settings

pytestmark = pytest.mark.mariadb


@pytest.fixture
def one_connection_engine() -> Iterator[Engine]:
    """An engine as the app makes it, with a pool of exactly one connection."""
    engine = make_engine(settings.DATABASE_URL, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def statements(one_connection_engine: Engine) -> list[str]:
    """What the engine sends: statements, and "PING" for each COM_PING of the driver."""
    sent: list[str] = []
    event.listen(one_connection_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))

    @event.listens_for(one_connection_engine, "connect")
    def _count_pings(dbapi_connection: Any, _record: Any) -> None:
        ping = dbapi_connection.ping

        def counted(*args: Any, **kwargs: Any) -> Any:
            sent.append("PING")
            return ping(*args, **kwargs)

        dbapi_connection.ping = counted

    return sent


def _kill(thread_id: int) -> None:
    """Kill a server thread from outside the pool, and wait until it is gone."""
    url = make_url(settings.DATABASE_URL)
    admin = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"KILL CONNECTION {int(thread_id)}")
            for _ in range(100):
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                    (thread_id,),
                )
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.01)
    finally:
        admin.close()
    time.sleep(0.05)  # the FIN reaches the client's socket


def _thread_id(uow: UnitOfWork) -> int:
    with uow:
        found = int(uow.session.scalar(text("SELECT CONNECTION_ID()")) or 0)
        uow.commit()
        return found


def test_a_connection_the_server_closed_is_replaced_at_checkout_without_a_ping(
    one_connection_engine: Engine, statements: list[str]
) -> None:
    uow = UnitOfWork(make_session_factory(one_connection_engine))
    first = _thread_id(uow)
    _kill(first)
    statements.clear()

    second = _thread_id(uow)

    assert second != first  # a new connection, and the use case never saw the dead one
    assert statements == ["SELECT CONNECTION_ID()"]  # nothing sent to test the connection


def test_a_connection_lost_mid_use_case_is_retried_on_a_fresh_one(
    one_connection_engine: Engine,
) -> None:
    uow = UnitOfWork(make_session_factory(one_connection_engine))
    attempts: list[int] = []

    def work(uow: UnitOfWork) -> int:
        thread_id = int(uow.session.scalar(text("SELECT CONNECTION_ID()")) or 0)
        attempts.append(thread_id)
        if len(attempts) == 1:
            _kill(thread_id)  # the server drops it before the use case is done
        uow.session.execute(text("SELECT 1"))
        return thread_id

    answered = uow.run(work)

    assert len(attempts) == 2 and attempts[0] != attempts[1]
    assert answered == attempts[1]


def test_a_connection_lost_at_commit_is_not_run_again(one_connection_engine: Engine) -> None:
    uow = UnitOfWork(make_session_factory(one_connection_engine))
    attempts: list[int] = []

    def work(uow: UnitOfWork) -> None:
        thread_id = int(uow.session.scalar(text("SELECT CONNECTION_ID()")) or 0)
        attempts.append(thread_id)
        _kill(thread_id)  # nothing else is sent before COMMIT

    with pytest.raises(CommitOutcomeUnknown) as caught:
        uow.run(work)

    assert len(attempts) == 1  # the effect may be durable: never applied twice
    assert is_outage(caught.value)  # answered 503 unavailable


def _rollbacks(engine: Engine) -> int:
    with engine.connect() as connection:
        row = connection.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'")).one()
        return int(row[1])


def test_a_connection_back_after_commit_is_not_rolled_back_again(
    one_connection_engine: Engine,
) -> None:
    uow = UnitOfWork(make_session_factory(one_connection_engine))
    before = _rollbacks(one_connection_engine)
    for _ in range(5):
        _thread_id(uow)

    # the two SHOW STATUS reads end their own transactions by rolling back, nothing else
    assert _rollbacks(one_connection_engine) - before <= 1


def test_a_connection_back_inside_a_transaction_is_rolled_back(
    one_connection_engine: Engine,
) -> None:
    raw = one_connection_engine.raw_connection()
    with raw.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE reset_probe (n INT)")
        cursor.execute("INSERT INTO reset_probe VALUES (1)")  # an open transaction
    raw.close()  # back to the pool without COMMIT or ROLLBACK

    with one_connection_engine.connect() as connection:
        # the same pooled connection: its temporary table, but not the uncommitted row
        assert connection.execute(text("SELECT COUNT(*) FROM reset_probe")).scalar() == 0
