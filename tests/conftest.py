"""Shared fixtures: one migrated database per run, a rolled-back transaction per test,
a fresh Redis, and the WeChat simulator as a real HTTP server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.orm import Session, sessionmaker

from app import create_app
from app.admins.operations import CLI
from app.caching import ConfigCache
from app.config import Config
from app.db import make_engine
from app.migrate import upgrade_database
from app.partners.services import create_partner, forget_cached_partners
from app.uow import UnitOfWork
from app.wiring import CONFIG_MODELS, wire_domain
from tests.factories import bound_to
from tests.support import settings
from tests.support.config import make_config
from tests.support.lock_order import watching_lock_order
from tests.support.rows import remove_rows_since, snapshot_rows
from tests.support.signing import PartnerKeys
from tests.support.wechat import MP_APPID, MP_SECRET
from wechat_hooks.simulator import SimulatorServer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.ON_MARIADB:
        return
    skip = pytest.mark.skip(reason="needs MariaDB: set TEST_DATABASE_URL (CI always does)")
    for item in items:
        if "mariadb" in item.keywords:
            item.add_marker(skip)


def _drop_everything(engine: Engine) -> None:
    meta = MetaData()
    meta.reflect(bind=engine)
    with engine.begin() as connection:
        if engine.dialect.name == "mysql":
            connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for table in meta.sorted_tables:
                connection.execute(text(f"DROP TABLE IF EXISTS `{table.name}`"))
            connection.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        else:
            meta.drop_all(connection)


@pytest.fixture(scope="session", autouse=True)
def _wired_domain() -> None:
    """Service tests run without an app: fill the domain's plug-in points as create_app does."""
    wire_domain()


@pytest.fixture(autouse=True)
def _lock_order() -> Iterator[list[str]]:
    """Every transaction of every test takes its row locks in app.locks' order (a test of
    the watch itself clears what it provoked)."""
    with watching_lock_order() as violations:
        yield violations
    assert not violations, f"row locks out of the order of app.locks: {violations}"


@pytest.fixture(autouse=True)
def _fresh_partner_cache() -> Iterator[None]:
    """Each test sees partners as its own database has them."""
    forget_cached_partners()
    yield
    forget_cached_partners()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if settings.DATABASE_URL:
        yield settings.DATABASE_URL
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    _drop_everything(engine)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A transaction that every session of the test joins through savepoints, rolled back."""
    with engine.connect() as connection:
        outer = connection.begin()
        yield connection
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def uow(session_factory: sessionmaker[Session]) -> UnitOfWork:
    return UnitOfWork(session_factory)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and inspecting rows; factories write through it."""
    with session_factory() as session, bound_to(session):
        yield session


@pytest.fixture
def redis() -> Iterator[Any]:
    if settings.REDIS_URL:
        client = redis_lib.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        client.flushdb()
        yield client
        client.flushdb()
        client.close()
    else:
        yield fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(apps={MP_APPID: MP_SECRET}) as server:
        yield server


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    simulator.state.reset()
    return simulator


@pytest.fixture
def config(sim: SimulatorServer, database_url: str) -> Config:
    return make_config(sim, database_url)


@pytest.fixture
def app(
    config: Config, engine: Engine, session_factory: sessionmaker[Session], redis: Any
) -> Flask:
    """The app on the test's rolled-back transaction, keeping settings and tiers between
    requests as a worker does (app.caching)."""
    cached_factory = ConfigCache(redis, CONFIG_MODELS).install(session_factory)
    return create_app(config, engine=engine, session_factory=cached_factory, redis=redis)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def deps(app: Flask) -> Any:
    return app.extensions["huiyuan"]


@pytest.fixture
def make_partner(deps: Any) -> Any:
    """``make_partner(name="POS", channels=None, trusted=False)``: another partner's keys
    (channels None: every channel)."""

    def make(name: str = "POS", channels: Any = None, trusted: bool = False) -> PartnerKeys:
        credentials = create_partner(
            uow=deps.uow(),
            actor=CLI,
            name=name,
            secret_key=deps.config.secret_key,
            channels=channels,
            trusted=trusted,
        )
        return PartnerKeys(credentials.app_key, credentials.app_secret)

    return make


@pytest.fixture
def partner(make_partner: Any) -> Any:
    """A partner on every channel, trusted to spend points by any member reference."""
    return make_partner("POS", trusted=True)


@pytest.fixture
def committing_app(
    sim: SimulatorServer, database_url: str, engine: Engine, redis: Any
) -> Iterator[Flask]:
    """An app whose use cases commit for real, so that several threads see each other's
    rows; every row it wrote is deleted afterwards."""
    snapshot = snapshot_rows(engine)
    app = create_app(make_config(sim, database_url), engine=engine, redis=redis)
    try:
        yield app
    finally:
        remove_rows_since(engine, snapshot)
