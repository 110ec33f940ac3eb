"""Refunds from store systems: points reversed in proportion and floored in the member's
favour, never beyond the order, once per refund id; a debt where the points were spent,
settled first by the next order; and points that expired unused are not taken back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, IdempotencyMismatch, InsufficientPoints, NotFound
from app.members.models import Member
from app.orders import services as orders
from app.orders.models import Order, Refund
from app.points import services as points_services
from app.readside import members as member_views
from app.uow import UnitOfWork
from tests.factories.settings import set_points_rules
from tests.support.books import assert_books_agree
from tests.support.orders import PlaceOrder, redeem, refund
from tests.support.rows import count_rows
from tests.support.settings import SECRET_KEY

# --- refunds ---


def test_a_full_refund_reverses_everything_the_order_earned(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 30_000, external_id="O-1")

    result = refund(uow, "O-1", "R-1", 30_000)

    assert (result.points_reversed, result.debt_added, result.replayed) == (300, 0, False)
    books = assert_books_agree(session, member.id)
    assert books.balance == 0
    assert books.entries[-1].kind == "reverse"
    order = session.scalars(select(Order).where(Order.external_id == "O-1")).one()
    assert (order.refunded_cents, order.points_reversed, order.net_cents) == (30_000, 300, 0)


def test_partial_refunds_reverse_proportionally_and_add_up_to_the_whole(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 30_000, external_id="O-1")  # 300 points
    place_order(("card_no", member.card_no), 10_000, external_id="O-2")  # 100 points

    parts = [refund(uow, "O-1", f"R-{n}", 7_000) for n in range(3)]  # 70 points each
    last = refund(uow, "O-1", "R-last", 9_000)

    assert [p.points_reversed for p in parts] == [70, 70, 70]
    assert last.points_reversed == 90
    books = assert_books_agree(session, member.id)
    assert books.balance == 100  # O-2's points are untouched
    assert sum(-e.delta for e in books.entries if e.kind == "reverse") == 300


def test_a_partial_refund_floors_in_the_members_favour(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")  # 100 points

    thirds = [refund(uow, "O-1", f"R-{n}", amount) for n, amount in enumerate((3_333,) * 3)]

    assert [t.points_reversed for t in thirds] == [33, 33, 33]  # 99.99% refunded: 99 back
    assert assert_books_agree(session, member.id).balance == 1
    assert refund(uow, "O-1", "R-cent", 1).points_reversed == 1
    assert assert_books_agree(session, member.id).balance == 0


def test_a_refund_beyond_the_order_is_a_conflict_and_changes_nothing(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")
    refund(uow, "O-1", "R-1", 6_000)

    with pytest.raises(Conflict) as caught:
        refund(uow, "O-1", "R-2", 4_001)

    assert caught.value.details == {"refundable_cents": 4_000}
    assert count_rows(session, Refund) == 1
    assert assert_books_agree(session, member.id).balance == 40
    order = session.scalars(select(Order).where(Order.external_id == "O-1")).one()
    assert order.refunded_cents == 6_000


def test_a_refund_of_an_unknown_order_is_not_found(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1", channel="pos")

    with pytest.raises(NotFound):
        refund(uow, "O-1", "R-1", 100, channel="tmall")
    with pytest.raises(NotFound):
        refund(uow, "O-404", "R-2", 100)
    assert count_rows(session, Refund) == 0


def test_a_replayed_refund_answers_the_first_result_and_reverses_once(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")
    first = refund(uow, "O-1", "R-1", 5_000)

    again = refund(uow, "O-1", "R-1", 5_000)
    with pytest.raises(IdempotencyMismatch):  # the same refund id for another amount
        refund(uow, "O-1", "R-1", 10_000)

    assert again == orders.RefundOutcome(first.refund_id, 50, 0, replayed=True)
    assert count_rows(session, Refund) == 1
    books = assert_books_agree(session, member.id)
    assert books.balance == 50
    assert [e.kind for e in books.entries] == ["earn", "reverse"]


def test_spent_then_refunded_leaves_a_debt_that_the_next_order_settles_first(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 50_000, external_id="O-1")  # 500 points
    redeem(uow, member, 450, "TILL-1")

    result = refund(uow, "O-1", "R-1", 50_000)

    assert (result.points_reversed, result.debt_added) == (500, 450)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (0, 450)
    card = member_views.get_card(uow=uow, member_id=member.id, secret=SECRET_KEY, qr_ttl_seconds=60)
    assert card.points["balance"] == 0  # the debt is never shown as a negative balance
    detail = member_views.member_detail(uow=uow, member_id=member.id)
    assert (detail.points["balance"], detail.points["debt"]) == (0, 450)  # operators see it
    with pytest.raises(InsufficientPoints):
        redeem(uow, member, 1, "TILL-2")

    small = place_order(("card_no", member.card_no), 30_000, external_id="O-2")  # 300 owed
    assert small.points_earned == 300
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (0, 150)
    assert books.entries[-1].kind == "reverse"
    assert books.entries[-1].reason_code == "debt_settlement"

    place_order(("card_no", member.card_no), 20_000, external_id="O-3")  # 200: 150 owed
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (50, 0)
    settled = [e for e in books.entries if e.reason_code == "debt_settlement"]
    assert [e.delta for e in settled] == [-300, -150]
    assert all(e.balance_after >= 0 for e in books.entries)


# --- refunds after points expired ---


def test_a_refund_never_takes_back_points_that_already_expired_unused(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member, frozen: Any
) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    place_order(("card_no", member.card_no), 10_000, external_id="O-EXP")  # 100 points
    redeem(uow, member, 60, "TILL-EXP")  # 40 left, which then expire
    frozen.shift(timedelta(days=31))
    expired = points_services.expire_points(uow=uow)
    assert expired == {"members": 1, "points": 40}

    result = refund(uow, "O-EXP", "R-EXP", 10_000)

    # The member used 60 of the order's points: those are owed; the 40 that expired are not.
    assert (result.points_reversed, result.debt_added) == (60, 60)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (0, 60)


def test_a_refund_of_an_order_whose_points_all_expired_takes_nothing(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member, frozen: Any
) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    place_order(("card_no", member.card_no), 10_000, external_id="O-ALL")
    frozen.shift(timedelta(days=31))
    points_services.expire_points(uow=uow)

    result = refund(uow, "O-ALL", "R-ALL", 10_000)

    assert (result.points_reversed, result.debt_added) == (0, 0)
    assert (assert_books_agree(session, member.id).debt) == 0
