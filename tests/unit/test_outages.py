"""What counts as an outage (503 ``unavailable``), and the timeouts that bound one."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest
import redis
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from app.config import Config, ConfigError
from app.container import make_redis
from app.db import Timeouts, make_engine
from app.outages import is_outage
from app.retry import lost_a_race


def wrapped(code: int, message: str = "") -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, message))


@pytest.mark.parametrize("code", [2003, 2006, 2013, 1040, 1927])
def test_a_lost_or_refused_connection_is_an_outage(code: int) -> None:
    assert is_outage(wrapped(code))
    assert is_outage(pymysql.err.OperationalError(code, "raw"))
    assert not lost_a_race(wrapped(code))


@pytest.mark.parametrize("code", [1205, 1213])
def test_a_lock_wait_or_deadlock_is_a_race_not_an_outage(code: int) -> None:
    assert not is_outage(wrapped(code))
    assert lost_a_race(wrapped(code))


def test_other_failures_are_not_outages() -> None:
    import sqlite3

    locked = sa_exc.OperationalError("x", {}, sqlite3.OperationalError("database is locked"))
    assert not is_outage(locked)
    assert not is_outage(wrapped(1064, "syntax"))
    assert not is_outage(redis.exceptions.ResponseError("WRONGTYPE"))
    assert not is_outage(ValueError("nope"))


def test_pool_exhaustion_closed_connections_and_redis_failures_are_outages() -> None:
    assert is_outage(sa_exc.TimeoutError("QueuePool limit reached"))
    assert is_outage(sa_exc.InterfaceError("x", {}, pymysql.err.InterfaceError(0, "")))
    assert is_outage(redis.exceptions.ConnectionError("refused"))
    assert is_outage(redis.exceptions.TimeoutError("Timeout reading from socket"))
    try:
        raise RuntimeError("while storing") from redis.exceptions.ConnectionError("gone")
    except RuntimeError as error:
        assert is_outage(error)


def test_timeouts_come_from_the_environment() -> None:
    config = Config.from_env(
        {
            "DATABASE_CONNECT_TIMEOUT": "2",
            "DATABASE_READ_TIMEOUT": "20",
            "DATABASE_WRITE_TIMEOUT": "21",
            "DATABASE_POOL_TIMEOUT": "4",
            "REDIS_CONNECT_TIMEOUT": "2",
            "REDIS_SOCKET_TIMEOUT": "6",
        }
    )
    assert (
        config.database_connect_timeout,
        config.database_read_timeout,
        config.database_write_timeout,
        config.database_pool_timeout,
        config.redis_connect_timeout,
        config.redis_socket_timeout,
    ) == (2, 20, 21, 4, 2, 6)
    defaults = Config.from_env({})
    assert (defaults.database_read_timeout, defaults.redis_socket_timeout) == (30, 3)


@pytest.mark.parametrize(
    "name", ["DATABASE_READ_TIMEOUT", "REDIS_SOCKET_TIMEOUT", "DATABASE_POOL_TIMEOUT"]
)
def test_a_timeout_must_be_positive(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: "0"})


def test_the_mysql_engine_carries_the_timeouts() -> None:
    engine = make_engine(
        "mysql+pymysql://u@127.0.0.1:1/db", Timeouts(connect=2, read=9, write=8, pool=3)
    )
    seen: dict[str, Any] = {}
    event.listen(engine, "do_connect", lambda _d, _r, _a, params: seen.update(params))
    with pytest.raises(sa_exc.OperationalError):
        engine.connect()  # nothing listens on port 1
    engine.dispose()
    assert engine.pool.timeout() == 3
    assert (seen["connect_timeout"], seen["read_timeout"], seen["write_timeout"]) == (2, 9, 8)
    # Lock waits give up (and are retried) before the read timeout cuts the connection.
    assert seen["init_command"] == "SET SESSION innodb_lock_wait_timeout = 6"


def test_timeouts_written_in_the_database_url_win() -> None:
    engine = make_engine("mysql+pymysql://u@127.0.0.1:1/db?read_timeout=50")
    seen: dict[str, Any] = {}
    event.listen(engine, "do_connect", lambda _d, _r, _a, params: seen.update(params))
    with pytest.raises(sa_exc.OperationalError):
        engine.connect()
    engine.dispose()
    assert seen["read_timeout"] == 50
    assert seen["connect_timeout"] == Timeouts().connect


def test_the_redis_client_carries_the_timeouts_and_retries_once() -> None:
    client = make_redis(
        Config(
            redis_url="redis://127.0.0.1:6390/0", redis_connect_timeout=2, redis_socket_timeout=4
        )
    )
    pool_kwargs = client.connection_pool.connection_kwargs
    assert (pool_kwargs["socket_connect_timeout"], pool_kwargs["socket_timeout"]) == (2, 4)
    assert pool_kwargs["retry"].get_retries() == 1
    client.close()
