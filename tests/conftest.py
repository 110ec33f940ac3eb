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
from app.config import Config
from app.db import make_engine
from app.migrate import upgrade_database
from app.uow import UnitOfWork
from app.wiring import wire_domain
from tests import settings
from tests.factories import ALL_FACTORIES
from tests.lock_order import watching_lock_order
from wechat_hooks.simulator import SimulatorServer

MP_APPID = "wx-test-mp"
MP_SECRET = "test-mp-secret"


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
    from app.partners.services import forget_cached_partners

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
    session = session_factory()
    for factory_class in ALL_FACTORIES:
        factory_class._meta.sqlalchemy_session = session
    yield session
    for factory_class in ALL_FACTORIES:
        factory_class._meta.sqlalchemy_session = None
    session.close()


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


def make_config(sim: SimulatorServer, database_url: str, **changes: Any) -> Config:
    return Config(
        env="test",
        database_url=database_url,
        redis_url=settings.REDIS_URL,
        secret_key=settings.SECRET_KEY,
        wechat_mp_appid=MP_APPID,
        wechat_mp_secret=MP_SECRET,
        wechat_api_base=sim.base_url,
        log_json=False,
    ).with_overrides(**changes)


@pytest.fixture
def config(sim: SimulatorServer, database_url: str) -> Config:
    return make_config(sim, database_url)


@pytest.fixture
def app(
    config: Config, engine: Engine, session_factory: sessionmaker[Session], redis: Any
) -> Flask:
    return create_app(config, engine=engine, session_factory=session_factory, redis=redis)


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
    from app.admins.operations import CLI
    from app.partners.services import create_partner
    from tests.helpers import PartnerKeys

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


def snapshot_rows(engine: Engine) -> dict[str, int]:
    """The highest id of every table with an ``id`` column, and of members for the tables
    keyed by member: what ``remove_rows_since`` keeps."""
    from sqlalchemy import func, select

    import app.models  # noqa: F401 - every table on the metadata
    from app.db import Base

    snapshot: dict[str, int] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if "id" in table.c:
                top = connection.scalar(select(func.coalesce(func.max(table.c.id), 0)))
                snapshot[table.name] = int(top or 0)
    return snapshot


def remove_rows_since(engine: Engine, snapshot: dict[str, int]) -> None:
    """Delete every row written after ``snapshot``: for tests whose app commits for real."""
    from app.db import Base

    newest_member = snapshot["members"]
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE members SET merged_into_id = NULL, referrer_id = NULL WHERE id > :id"),
            {"id": newest_member},
        )
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in snapshot:
                connection.execute(table.delete().where(table.c.id > snapshot[table.name]))
            elif "member_id" in table.c:
                connection.execute(table.delete().where(table.c.member_id > newest_member))
