"""The outbox drain on MariaDB: a worker killed with SIGKILL in the middle of a batch loses
nothing and repeats nothing once its lease expires; two drains at once never handle one
event twice, and one skips the rows another is leasing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from app.db import make_session_factory
from app.outbox import services as outbox
from app.outbox.events import Event
from app.outbox.models import OutboxDelivery, OutboxMessage
from app.outbox.rules import DrainPolicy
from app.outbox.services import Handler
from app.uow import UnitOfWork
from tests.integration.outbox_worker import TOPIC
from tests.support import settings

pytestmark = pytest.mark.mariadb
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 10


def _clear(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(OutboxDelivery))
        connection.execute(delete(OutboxMessage))


@pytest.fixture
def clean_outbox(engine: Engine) -> Iterator[Engine]:
    """These tests commit for real: the outbox starts and ends empty."""
    _clear(engine)
    yield engine
    _clear(engine)


def _emit(engine: Engine, count: int) -> list[int]:
    uow = UnitOfWork(make_session_factory(engine))
    with uow:
        for n in range(1, count + 1):
            uow.emit(Event(TOPIC, {"n": n}))
        uow.commit()
    with Session(engine) as session:
        return list(session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))


def _worker(log: Path, block_at: int, lease_seconds: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.integration.outbox_worker"]
    args = [str(settings.DATABASE_URL), str(log), str(block_at), str(lease_seconds)]
    return subprocess.Popen(
        command + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(
    clean_outbox: Engine, tmp_path: Path
) -> None:
    engine = clean_outbox
    ids = _emit(engine, EVENTS)
    log = tmp_path / "effects.log"
    log.touch()
    lease_seconds = 2

    first = _worker(log, block_at=5, lease_seconds=lease_seconds)
    try:
        _wait_for(lambda: "blocking" in log.read_text())
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=10)  # reaps it and closes its pipes
    assert first.returncode == -signal.SIGKILL
    with Session(engine) as session:
        handled = session.scalar(select(func.count()).where(OutboxMessage.handled_at.is_not(None)))
        leased = session.scalar(select(func.count()).where(OutboxMessage.leased_until.is_not(None)))
    assert handled == 4  # events 1-4 done; 5 hung; 5-10 still leased to the dead worker
    assert leased == EVENTS - 4

    time.sleep(lease_seconds + 0.5)  # the dead worker's leases lapse (real time: two processes)
    second = _worker(log, block_at=0, lease_seconds=lease_seconds)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "'handled': 6" in out

    effects = [line for line in log.read_text().splitlines() if not line.startswith("blocking")]
    expected = [f"{i} {name}" for i in ids for name in ("probe.a", "probe.b")]
    assert sorted(effects) == sorted(expected)  # each (event, handler) exactly once
    assert Counter(effects).most_common(1)[0][1] == 1
    with Session(engine) as session:
        rows = session.execute(select(OutboxDelivery.message_id, OutboxDelivery.handler)).all()
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert sorted(rows) == sorted((i, n) for i in ids for n in ("probe.a", "probe.b"))
    assert all(m.handled_at is not None and m.dead_at is None for m in messages)
    assert [m.attempts for m in messages] == [1] * 4 + [2] * 6  # the taken-over ones twice


def test_two_drains_at_once_never_handle_one_event_twice(clean_outbox: Engine) -> None:
    engine = clean_outbox
    ids = _emit(engine, 60)
    calls: list[tuple[int, str]] = []
    lock = threading.Lock()

    def run(session: Session, message: OutboxMessage) -> str:
        time.sleep(0.005)  # long enough for the two workers' batches to interleave
        with lock:
            calls.append((message.id, str(message.lease_owner)))
        return "noted"

    handler = Handler("test.concurrent", frozenset({TOPIC}), run)
    policy = DrainPolicy(batch_size=5, lease_seconds=60, max_batches=100)
    start = threading.Barrier(2)
    results: dict[str, dict[str, int]] = {}

    def worker(owner: str) -> None:
        uow = UnitOfWork(make_session_factory(engine))
        start.wait(timeout=10)
        results[owner] = outbox.drain(uow=uow, handlers=[handler], policy=policy, owner=owner)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    handled_ids = [message_id for message_id, _ in calls]
    assert sorted(handled_ids) == ids  # every event once, none twice
    assert results["w1"]["handled"] + results["w2"]["handled"] == len(ids)
    with Session(engine) as session:
        deliveries = session.scalar(select(func.count()).select_from(OutboxDelivery))
    assert deliveries == len(ids)


def test_a_drain_skips_the_rows_another_is_leasing_instead_of_waiting(
    clean_outbox: Engine,
) -> None:
    """While one drain's lease transaction holds the first rows, another takes the next
    ones at once: SKIP LOCKED, so concurrent drains share the work instead of queueing."""
    engine = clean_outbox
    ids = _emit(engine, 10)
    policy = DrainPolicy(batch_size=4, lease_seconds=60, max_batches=1)
    with engine.connect() as holder:
        held = holder.scalars(
            select(OutboxMessage.id).order_by(OutboxMessage.id).limit(4).with_for_update()
        ).all()
        started = time.monotonic()
        leased = outbox.lease_batch(
            uow=UnitOfWork(make_session_factory(engine)), policy=policy, owner="w2"
        )
        waited = time.monotonic() - started
        holder.rollback()

    assert held == ids[:4]
    assert leased == ids[4:8]  # the next rows, not the held ones
    assert waited < 1.0  # not a lock wait
