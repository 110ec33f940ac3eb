"""The points as the member reads them: the ledger newest first in pages, each kind of entry
with its reason code, the member's text and the balance after it; the card's balance and the
points that expire soonest, as expiry rules change and before the expiry job runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.members.models import Member
from app.orders import services as orders
from app.points import queries as points_queries
from app.points import services
from app.readside import members as member_views
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules
from tests.support.books import assert_books_agree, books_of
from tests.support.clock import T0
from tests.support.orders import redeem_by_card
from tests.support.points import OPERATOR, earn, spend
from tests.support.settings import SECRET_KEY


@pytest.fixture
def member(session: Session, senders: None, frozen: Any) -> Member:
    """A member with no phone or other identity under the default rules (the package's
    ``member`` is the one the order tests find by each kind of reference)."""
    set_points_rules(session)
    return MemberFactory()


# --- the ledger as the member reads it ---


def test_the_ledger_lists_newest_first_in_pages(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    for amount in (10, 20, 30):
        earn(uow, member.id, amount)
    spend(uow, member.id, 5)

    first = services.list_ledger(uow=uow, member_id=member.id, before_id=None, limit=3)
    rest = services.list_ledger(uow=uow, member_id=member.id, before_id=first[-1].id, limit=3)

    assert [e.delta for e in first] == [-5, 30, 20]
    assert [e.balance_after for e in first] == [55, 60, 30]
    assert [e.delta for e in rest] == [10]


def test_the_card_shows_the_points_that_expire_soonest(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 30, expires_at=T0 + timedelta(days=20))
    earn(uow, member.id, 12, expires_at=T0 + timedelta(days=20))
    earn(uow, member.id, 50, expires_at=T0 + timedelta(days=200))
    spend(uow, member.id, 10)

    with uow:
        expiring = points_queries.expiring_soonest(uow.session, member.id)

    assert expiring == [
        {"points": 32, "expires_at": T0 + timedelta(days=20)},
        {"points": 50, "expires_at": T0 + timedelta(days=200)},
    ]


def test_each_kind_of_entry_carries_its_reason_code_and_the_members_text(
    uow: UnitOfWork,
    session: Session,
    member: Member,
    frozen: Any,
    place_order: Callable[..., orders.OrderOutcome],
) -> None:
    """Every kind a member can meet in the ledger, newest first, each with the balance after
    it: a lot past its expiry is written off by the next spend, before that spend."""
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    place_order(("card_no", member.card_no), 20_000, external_id="O-A")  # 200, 30-day lot
    frozen.shift(timedelta(days=20))
    place_order(("card_no", member.card_no), 10_000, external_id="O-B")  # 100
    frozen.shift(timedelta(days=11))  # the first lot has expired, unwritten
    assert redeem_by_card(uow, member.card_no, 40, "T-1").balance == 60
    orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id="O-B",
        external_id="R-B",
        amount_cents=5_000,
    )
    services.adjust_points(uow=uow, actor=OPERATOR, member_id=member.id, delta=15, reason="x")

    entries = services.list_ledger(uow=uow, member_id=member.id, before_id=None, limit=10)

    assert [(e.kind, e.delta, e.balance_after) for e in entries] == [
        ("adjust", 15, 25),
        ("reverse", -50, 10),
        ("spend", -40, 60),
        ("expire", -200, 100),
        ("earn", 100, 300),
        ("earn", 200, 200),
    ]
    assert [(e.reason_code, e.reason) for e in entries] == [
        ("adjustment", "积分调整"),
        ("refund", "订单退款"),
        ("redemption", "积分抵扣"),
        ("expiry", "积分过期"),
        ("order", "订单积分"),
        ("order", "订单积分"),
    ]
    ids = [entry.id for entry in entries]
    assert ids == sorted(ids, reverse=True)
    assert (entries[-1].created_at, entries[0].created_at) == (T0, T0 + timedelta(days=31))
    assert_books_agree(session, member.id)


def _card_points(uow: UnitOfWork, member_id: int) -> dict[str, Any]:
    card = member_views.get_card(uow=uow, member_id=member_id, secret=SECRET_KEY, qr_ttl_seconds=60)
    return card.points


def test_a_new_expiry_rule_applies_to_later_earnings_and_the_card_lists_both_lots(
    session: Session, uow: UnitOfWork, member: Member
) -> None:
    """Points rules apply to points earned from now on: a lot keeps the expiry it was
    earned with; the card shows the balance and the soonest expiries first."""
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    earn(uow, member.id, 1_500)
    set_points_rules(session, expiry={"kind": "end_of_next_year"})
    earn(uow, member.id, 150)

    assert _card_points(uow, member.id) == {
        "balance": 1_650,
        "expiring": [
            {"points": 1_500, "expires_at": T0 + timedelta(days=30)},
            {"points": 150, "expires_at": datetime(2026, 12, 31, 16, tzinfo=UTC)},
        ],
    }


def test_expired_points_leave_the_card_before_the_expiry_job_runs(
    session: Session, uow: UnitOfWork, member: Member, frozen: Any
) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    earn(uow, member.id, 100)
    frozen.shift(timedelta(days=30))

    assert _card_points(uow, member.id) == {"balance": 0, "expiring": []}
    assert books_of(session, member.id).kinds() == ["earn"]  # nothing written off yet
