"""The points ledger at the operations level: earning makes a lot with its expiry, spending
takes from the lots that expire first, reversing takes from the order's own lot and leaves a
debt beyond the balance; the expiry job writes off what is left, and the reminder job records
each expiry once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InsufficientPoints, ValidationFailed
from app.members.models import Member
from app.points import operations as points
from app.points import queries as points_queries
from app.points import services
from app.points.models import ExpiryReminder
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.settings import set_points_rules
from tests.support.books import assert_books_agree, books_of
from tests.support.clock import T0
from tests.support.points import earn, in_tx, spend


@pytest.fixture
def member(session: Session, senders: None, frozen: Any) -> Member:
    """A member with no phone or other identity under the default rules (the package's
    ``member`` is the one the order tests find by each kind of reference)."""
    set_points_rules(session)
    return MemberFactory()


# --- earning ---


def test_an_earning_is_a_lot_with_its_expiry_and_an_entry_with_the_balance_after(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    result = earn(uow, member.id, 120)

    assert result.credited == 120
    assert result.settled_debt == 0
    books = assert_books_agree(session, member.id)
    assert books.balance == 120
    assert books.kinds() == ["earn"]
    assert books.entries[0].balance_after == 120
    (lot,) = books.lots
    assert (lot.points, lot.remaining, lot.entry_id) == (120, 120, books.entries[0].id)
    assert lot.expires_at == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 Shanghai


def test_days_expiry_from_the_rules(uow: UnitOfWork, session: Session, member: Member) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 90})

    earn(uow, member.id, 10)

    (lot,) = books_of(session, member.id).lots
    assert lot.expires_at == T0 + timedelta(days=90)


def test_earning_nothing_is_refused(uow: UnitOfWork, session: Session, member: Member) -> None:
    with pytest.raises(ValidationFailed):
        earn(uow, member.id, 0)
    assert books_of(session, member.id).entries == []


# --- spending ---


def test_a_spend_consumes_the_lots_that_expire_first(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    late = earn(uow, member.id, 100, expires_at=T0 + timedelta(days=300)).entries[0]
    soon = earn(uow, member.id, 50, expires_at=T0 + timedelta(days=10)).entries[0]
    middle = earn(uow, member.id, 40, expires_at=T0 + timedelta(days=100)).entries[0]

    entry = spend(uow, member.id, 70)

    assert (entry.kind, entry.delta, entry.balance_after) == ("spend", -70, 120)
    books = assert_books_agree(session, member.id)
    remaining = {lot.entry_id: lot.remaining for lot in books.lots}
    assert remaining == {soon.id: 0, middle.id: 20, late.id: 100}


def test_an_insufficient_spend_raises_and_changes_nothing(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 60)
    before = books_of(session, member.id)

    with pytest.raises(InsufficientPoints) as caught:
        spend(uow, member.id, 61)

    assert caught.value.details == {"balance": 60, "requested": 61}
    after = assert_books_agree(session, member.id)
    assert after.balance == 60
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    assert [lot.remaining for lot in after.lots] == [60]


def test_expired_but_unwritten_points_cannot_be_spent(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    earn(uow, member.id, 100, expires_at=T0 + timedelta(days=1))
    earn(uow, member.id, 30)
    frozen.shift(timedelta(days=2))
    with uow:
        assert points_queries.balance_of(uow.session, member.id) == 30

    with pytest.raises(InsufficientPoints):
        spend(uow, member.id, 31)
    entry = spend(uow, member.id, 30)

    assert entry.balance_after == 0
    books = assert_books_agree(session, member.id)
    assert books.kinds() == ["earn", "earn", "expire", "spend"]
    assert books.entries[2].delta == -100


def test_a_spend_with_a_used_key_answers_the_first_entry(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 100)
    first = spend(uow, member.id, 40, idempotency_key="till:k:1")

    again = spend(uow, member.id, 40, idempotency_key="till:k:1")

    assert again.id == first.id
    assert assert_books_agree(session, member.id).balance == 60


# --- reversing ---


def test_a_reversal_takes_from_the_orders_own_lot_first(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    other = earn(uow, member.id, 100, expires_at=T0 + timedelta(days=5)).entries[0]
    own = earn(uow, member.id, 50, order_id=4242).entries[0]

    result = in_tx(
        uow, lambda s: points.reverse(s, member_id=member.id, points=30, note="r", order_id=4242)
    )

    assert (result.reversed_points, result.debt_added) == (30, 0)
    books = assert_books_agree(session, member.id)
    assert {lot.entry_id: lot.remaining for lot in books.lots} == {other.id: 100, own.id: 20}


def test_a_reversal_beyond_the_balance_stops_at_zero_and_records_a_debt(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 50)
    spend(uow, member.id, 45)

    result = in_tx(uow, lambda s: points.reverse(s, member_id=member.id, points=30, note="r"))

    assert (result.reversed_points, result.debt_added) == (5, 25)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (0, 25)

    settled = earn(uow, member.id, 40)

    assert (settled.credited, settled.settled_debt) == (15, 25)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (15, 0)
    assert books.entries[-1].kind == "reverse"
    assert books.entries[-1].reason_code == "debt_settlement"


# --- the expiry job ---


def test_expiry_writes_off_what_is_left_and_a_rerun_changes_nothing(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    earn(uow, member.id, 100)  # expires 2026-12-31 16:00 UTC
    spend(uow, member.id, 30)
    frozen.move_to(datetime(2026, 1, 1, 4, tzinfo=UTC))
    earn(uow, member.id, 40)  # earned in 2026: lives until 2027-12-31 16:00 UTC

    frozen.move_to(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    assert services.expire_points(uow=uow) == {"members": 0, "points": 0}

    frozen.move_to(datetime(2026, 12, 31, 16, 0, 5, tzinfo=UTC))  # just after midnight
    first = services.expire_points(uow=uow)
    entries_after_first = len(books_of(session, member.id).entries)
    second = services.expire_points(uow=uow)

    assert first == {"members": 1, "points": 70}
    assert second == {"members": 0, "points": 0}
    books = assert_books_agree(session, member.id)
    assert len(books.entries) == entries_after_first
    assert books.kinds() == ["earn", "spend", "earn", "expire"]
    assert (books.entries[-1].delta, books.entries[-1].balance_after) == (-70, 40)
    assert [lot.remaining for lot in books.lots] == [0, 40]


def test_expiry_runs_in_batches_over_every_member(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    people = MemberFactory.create_batch(3)
    for index, person in enumerate(people):
        earn(uow, person.id, 10 * (index + 1))
    frozen.shift(timedelta(days=31))

    assert services.expire_points(uow=uow, batch_size=1) == {"members": 3, "points": 60}
    assert services.expire_points(uow=uow, batch_size=1) == {"members": 0, "points": 0}
    for person in people:
        books = assert_books_agree(session, person.id)
        assert books.balance == 0
        assert books.kinds() == ["earn", "expire"]


# --- reminders ---


def test_reminders_record_each_member_and_expiry_once_across_reruns(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    set_points_rules(session, reminder_days_before=30)
    soon = T0 + timedelta(days=20)
    later = T0 + timedelta(days=40)
    earn(uow, member.id, 15, expires_at=soon)
    earn(uow, member.id, 25, expires_at=soon)
    earn(uow, member.id, 60, expires_at=later)
    spent = MemberFactory()  # its expiring lot is spent already: nothing to remind
    earn(uow, spent.id, 10, expires_at=soon)
    spend(uow, spent.id, 10)

    assert services.remind_expiring(uow=uow) == {"recorded": 1}
    assert services.remind_expiring(uow=uow) == {"recorded": 0}
    frozen.shift(timedelta(days=15))  # the later lot is now within 30 days
    assert services.remind_expiring(uow=uow, batch_size=1) == {"recorded": 1}
    assert services.remind_expiring(uow=uow, batch_size=1) == {"recorded": 0}

    session.expire_all()
    reminders = list(
        session.scalars(
            select(ExpiryReminder).where(ExpiryReminder.member_id.in_([member.id, spent.id]))
        )
    )
    assert sorted((r.member_id, r.expires_at, r.points) for r in reminders) == [
        (member.id, soon, 40),
        (member.id, later, 60),
    ]
    assert {r.status for r in reminders} == {"pending"}
