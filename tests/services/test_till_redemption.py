"""Spending points at the till: a redemption spends and answers the balance, once per
partner and external id; a short balance is refused without using up the id; the till never
creates a member."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import IdempotencyMismatch, InsufficientPoints, NotFound
from app.members.models import Member
from app.orders import services as orders
from app.points.models import PointsEntry
from app.uow import UnitOfWork
from tests.factories.partners import OTHER_SENDER, SENDER
from tests.support.books import assert_books_agree
from tests.support.orders import PlaceOrder, redeem
from tests.support.rows import count_rows
from tests.support.settings import SECRET_KEY

# --- spending at the till ---


def test_a_till_redemption_spends_and_answers_the_balance(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000)

    outcome = redeem(uow, member, 30, "TILL-1")

    assert outcome == orders.RedeemOutcome(member.id, 70)
    entry = session.scalars(select(PointsEntry).where(PointsEntry.kind == "spend")).one()
    assert (entry.delta, entry.reason_code, entry.reason) == (-30, "redemption", "积分抵扣")
    assert entry.note == "till redemption TILL-1"
    assert assert_books_agree(session, member.id).balance == 70


def test_a_till_redemption_is_idempotent_by_partner_and_external_id(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000)
    first = redeem(uow, member, 30, "TILL-1")
    redeem(uow, member, 20, "TILL-2")

    again = redeem(uow, member, 30, "TILL-1")
    other_partner = redeem(uow, member, 30, "TILL-1", sender=OTHER_SENDER)

    # the balance the first spend left, not today's
    assert (again.member_id, again.balance, again.replayed) == (member.id, first.balance, True)
    assert other_partner.balance == 20
    books = assert_books_agree(session, member.id)
    assert [e.delta for e in books.entries if e.kind == "spend"] == [-30, -20, -30]


def test_another_amount_under_a_used_external_id_is_a_mismatch(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000)
    redeem(uow, member, 30, "TILL-1")

    with pytest.raises(IdempotencyMismatch):
        redeem(uow, member, 31, "TILL-1")

    assert assert_books_agree(session, member.id).balance == 70


def test_a_short_balance_at_the_till_is_insufficient_points(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000)

    with pytest.raises(InsufficientPoints) as caught:
        redeem(uow, member, 101, "TILL-1")

    assert caught.value.code == "insufficient_points"
    assert caught.value.status == 409
    assert assert_books_agree(session, member.id).balance == 100
    # the failed attempt did not use up the external id
    assert redeem(uow, member, 100, "TILL-1").balance == 0


def test_the_till_never_creates_a_member(
    uow: UnitOfWork, rules_set: Session, member: Member
) -> None:
    members_before = count_rows(rules_set, Member)

    with pytest.raises(NotFound):
        orders.redeem_at_till(
            uow=uow,
            sender=SENDER,
            secret=SECRET_KEY,
            member=orders.MemberRef("phone", "13500000000"),
            points_to_spend=1,
            external_id="TILL-X",
        )
    assert count_rows(rules_set, Member) == members_before
