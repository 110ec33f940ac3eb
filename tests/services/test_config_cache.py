"""Settings documents and the tier ladder kept per process (app.caching.ConfigCache):
two workers share one Redis; a change committed by one reaches the other within the
epoch check interval, a transaction reads its own writes, and a rollback announces
nothing. Each worker has its own session factory over the test's connection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, sessionmaker

from app.admins.operations import CLI
from app.caching import CONFIG_EPOCH_KEY, ConfigCache, EpochCache
from app.points import operations as points
from app.points import services as points_services
from app.points.rules import DEFAULT_RULES, parse_points_rules
from app.tiers import operations as tier_ops
from app.tiers import services as tier_services
from app.tiers.models import Tier
from app.uow import UnitOfWork
from app.wiring import CONFIG_MODELS


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Worker:
    """One process's view: its own cache and session factory, the shared Redis."""

    uow: UnitOfWork
    statements: list[str]

    def rules(self) -> Any:
        with self.uow:
            return points.points_rules(self.uow.session)

    def ladder(self) -> list[str]:
        with self.uow:
            return [tier.code for tier in tier_ops.load_tiers(self.uow.session)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker(connection: Connection, redis: Any, clock: Clock) -> Callable[[], Worker]:
    def make() -> Worker:
        factory = sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        cache = ConfigCache(redis, CONFIG_MODELS, EpochCache(CONFIG_EPOCH_KEY, clock=clock))
        statements: list[str] = []
        event.listen(connection, "before_cursor_execute", lambda *args: statements.append(args[2]))
        return Worker(UnitOfWork(cache.install(factory)), statements)

    return make


def _reads_of(statements: list[str], table: str) -> int:
    return sum(1 for sql in statements if sql.lstrip().startswith("SELECT") and table in sql)


def test_a_worker_reads_the_rules_once_and_then_from_its_cache(worker: Any) -> None:
    one = worker()

    first = one.rules()
    reads = _reads_of(one.statements, "settings_documents")
    again = one.rules()

    assert reads == 1
    assert _reads_of(one.statements, "settings_documents") == reads  # no second read
    assert again is first  # the same frozen value, shared by the process's requests


def test_a_change_reaches_another_worker_within_the_check_interval(
    worker: Any, clock: Clock
) -> None:
    reader, writer = worker(), worker()
    assert reader.rules().signup_bonus == 0  # the defaults, now cached by the reader
    changed = dataclasses.replace(reader.rules(), signup_bonus=25)

    points_services.put_points_rules(uow=writer.uow, actor=CLI, rules=changed)

    clock.now += 0.5  # within the interval the reader may still serve what it holds ...
    assert reader.rules().signup_bonus == 0
    clock.now += 0.5  # ... and at the bound (1 s) it reads the moved epoch and reloads
    assert reader.rules().signup_bonus == 25
    assert writer.rules().signup_bonus == 25  # the writer dropped its own at once


def test_the_tier_ladder_is_cached_and_reloaded_after_a_change(worker: Any, clock: Clock) -> None:
    reader, writer = worker(), worker()
    tier_services.create_tier(
        uow=writer.uow,
        actor=CLI,
        fields={"code": "silver", "name": "银卡", "rank": 1, "threshold": 0, "benefits": {}},
    )
    assert reader.ladder() == ["silver"]

    tier_services.create_tier(
        uow=writer.uow,
        actor=CLI,
        fields={"code": "gold", "name": "金卡", "rank": 2, "threshold": 100, "benefits": {}},
    )
    assert reader.ladder() == ["silver"]  # within the interval
    clock.now += 1.0
    assert reader.ladder() == ["silver", "gold"]


def test_a_transaction_reads_its_own_writes_and_a_rollback_announces_nothing(
    worker: Any, redis: Any
) -> None:
    one = worker()
    assert one.ladder() == []  # cached: an empty ladder
    with one.uow:
        session: Session = one.uow.session
        session.add(Tier(code="vip", name="VIP", rank=1, threshold=0, benefits={}))
        assert [tier.code for tier in tier_ops.load_tiers(session)] == ["vip"]
        one.uow.rollback()

    assert redis.get(CONFIG_EPOCH_KEY) is None  # nothing committed, nothing announced
    assert one.ladder() == []


def test_a_cached_ladder_hands_out_copies_callers_may_not_corrupt(worker: Any) -> None:
    one = worker()
    tier_services.create_tier(
        uow=one.uow,
        actor=CLI,
        fields={
            "code": "gold",
            "name": "金卡",
            "rank": 1,
            "threshold": 0,
            "benefits": {"points_multiplier_pct": 150},
        },
    )
    with one.uow:
        tier_ops.load_tiers(one.uow.session)[0].benefits["points_multiplier_pct"] = 999

    with one.uow:
        assert tier_ops.load_tiers(one.uow.session)[0].benefits == {"points_multiplier_pct": 150}


def test_without_redis_the_database_is_read_and_nothing_fails(connection: Connection) -> None:
    class DeadRedis:
        def get(self, _key: str) -> None:
            raise redis_lib.exceptions.ConnectionError("down")

    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    uow = UnitOfWork(ConfigCache(DeadRedis(), CONFIG_MODELS).install(factory))

    with uow:
        assert points.points_rules(uow.session) == parse_points_rules(DEFAULT_RULES)
