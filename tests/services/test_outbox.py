"""The outbox: events exist iff their transaction commits; the drain hands each to every
subscribed handler once, retries failures with exponential backoff, dead-letters them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict
from app.outbox import services as outbox
from app.outbox.events import Event
from app.outbox.models import OutboxDelivery, OutboxMessage
from app.outbox.rules import DrainPolicy, backoff_seconds
from app.outbox.services import Handler
from app.uow import UnitOfWork

T0 = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
POLICY = DrainPolicy(batch_size=2, lease_seconds=60, max_attempts=3, backoff_seconds=30)


class Recorder:
    """A subscriber that notes what it was given and fails while ``failing`` is set."""

    def __init__(self, name: str, topics: set[str]) -> None:
        self.calls: list[int] = []
        self.failing = False
        self.handler = Handler(name, frozenset(topics), self.run)

    def run(self, session: Session, message: OutboxMessage) -> str:
        if self.failing:
            raise RuntimeError("channel down")
        self.calls.append(message.id)
        return "noted"


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def emit(uow: UnitOfWork, *events: Event) -> list[int]:
    with uow:
        for event in events:
            uow.emit(event)
        uow.commit()
    with uow:
        rows = uow.session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()))
        return sorted(list(rows)[: len(events)])


def message(session: Session, message_id: int) -> OutboxMessage:
    session.expire_all()
    row = session.get(OutboxMessage, message_id)
    assert row is not None
    return row


def test_an_event_is_recorded_only_when_its_transaction_commits(
    uow: UnitOfWork, session: Session
) -> None:
    before = set(session.scalars(select(OutboxMessage.id)))
    with uow:
        uow.emit(Event("test.rolled_back", {"n": 1}))  # left without commit: rolled back
    [kept] = emit(uow, Event("test.kept", {"n": 2}, member_id=None))

    after = set(session.scalars(select(OutboxMessage.id))) - before
    assert after == {kept}
    assert message(session, kept).topic == "test.kept"
    assert message(session, kept).payload == {"n": 2}


def test_the_drain_hands_each_event_to_each_subscriber_once(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    a, b = Recorder("test.a", {"test.one", "test.two"}), Recorder("test.b", {"test.two"})
    ids = emit(uow, Event("test.one"), Event("test.two"), Event("test.other"))

    first = outbox.drain(uow=uow, handlers=[a.handler, b.handler], policy=POLICY)
    again = outbox.drain(uow=uow, handlers=[a.handler, b.handler], policy=POLICY)

    assert first["handled"] == 3  # in two batches of two; the unsubscribed one is done too
    assert again["handled"] == 0
    assert a.calls == ids[:2]
    assert b.calls == [ids[1]]
    deliveries = session.execute(
        select(OutboxDelivery.message_id, OutboxDelivery.handler, OutboxDelivery.outcome).where(
            OutboxDelivery.message_id.in_(ids)
        )
    ).all()
    assert sorted(deliveries) == [
        (ids[0], "test.a", "noted"),
        (ids[1], "test.a", "noted"),
        (ids[1], "test.b", "noted"),
    ]
    assert all(message(session, i).handled_at == T0 for i in ids)


def test_backoff_is_exponential_and_a_delivered_handler_is_not_run_again(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    ok, flaky = Recorder("test.ok", {"test.flaky"}), Recorder("test.flaky", {"test.flaky"})
    flaky.failing = True
    [event_id] = emit(uow, Event("test.flaky"))
    handlers = [ok.handler, flaky.handler]

    assert outbox.drain(uow=uow, handlers=handlers, policy=POLICY)["retried"] == 1
    row = message(session, event_id)
    assert (row.attempts, row.leased_until) == (1, None)
    assert row.available_at == T0 + timedelta(seconds=30)
    assert "test.flaky: RuntimeError: channel down" in (row.last_error or "")

    frozen.shift(timedelta(seconds=29))  # not due yet: nothing is leased
    assert outbox.drain(uow=uow, handlers=handlers, policy=POLICY)["retried"] == 0
    frozen.shift(timedelta(seconds=1))
    assert outbox.drain(uow=uow, handlers=handlers, policy=POLICY)["retried"] == 1
    assert message(session, event_id).available_at == T0 + timedelta(seconds=30 + 60)

    flaky.failing = False
    frozen.shift(timedelta(seconds=60))
    assert outbox.drain(uow=uow, handlers=handlers, policy=POLICY)["handled"] == 1
    assert ok.calls == [event_id]  # delivered on the first attempt, never repeated
    assert flaky.calls == [event_id]
    assert message(session, event_id).handled_at is not None


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = DrainPolicy(backoff_seconds=30, backoff_max_seconds=100)

    assert [backoff_seconds(n, policy) for n in (1, 2, 3, 4, 40)] == [30, 60, 100, 100, 100]


def test_after_max_attempts_a_message_is_dead_lettered_and_can_be_retried(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    broken = Recorder("test.broken", {"test.broken"})
    broken.failing = True
    [event_id] = emit(uow, Event("test.broken"))

    results = []
    for _ in range(POLICY.max_attempts):
        results.append(outbox.drain(uow=uow, handlers=[broken.handler], policy=POLICY))
        frozen.shift(timedelta(hours=1))

    assert [r["retried"] for r in results] == [1, 1, 0]
    assert results[-1]["dead"] == 1
    assert message(session, event_id).dead_at is not None
    assert outbox.drain(uow=uow, handlers=[broken.handler], policy=POLICY)["retried"] == 0
    assert event_id in {m.id for m in outbox.list_messages(uow=uow, dead=True)}

    broken.failing = False
    outbox.retry_message(uow=uow, message_id=event_id)
    assert outbox.drain(uow=uow, handlers=[broken.handler], policy=POLICY)["handled"] == 1
    assert broken.calls == [event_id]
    assert message(session, event_id).dead_at is None
    with pytest.raises(Conflict):
        outbox.retry_message(uow=uow, message_id=event_id)  # only dead letters


def test_an_expired_lease_is_taken_over(uow: UnitOfWork, session: Session, frozen: Any) -> None:
    """A worker that died holding a lease: the message is due again once the lease ends."""
    note = Recorder("test.note", {"test.note"})
    [event_id] = emit(uow, Event("test.note"))
    assert outbox.lease_batch(uow=uow, policy=POLICY, owner="dead-worker") == [event_id]

    assert outbox.drain(uow=uow, handlers=[note.handler], policy=POLICY)["handled"] == 0
    frozen.shift(timedelta(seconds=POLICY.lease_seconds + 1))
    assert outbox.drain(uow=uow, handlers=[note.handler], policy=POLICY)["handled"] == 1
    assert note.calls == [event_id]
    assert message(session, event_id).attempts == 2
