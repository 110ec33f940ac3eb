"""Recording once: a replayed order answers the first result and earns once, and a replay
compares the whole request. An order, refund or till spend sent again with any field changed
is a mismatch that reveals nothing of the first request."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.errors import IdempotencyMismatch
from app.external_ids.replay import MISMATCH_MESSAGE
from app.members.models import Member
from app.orders import services as orders
from app.orders.models import Order, Refund
from app.uow import UnitOfWork
from tests.factories.orders import item
from tests.factories.partners import SENDER
from tests.support.books import assert_books_agree, books_of
from tests.support.clock import T0
from tests.support.orders import PlaceOrder, order_once, qr_for, refund, spend_once
from tests.support.rows import count_rows

# --- recording once ---


def test_a_replayed_order_answers_the_first_result_and_earns_once(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    first = place_order(("card_no", member.card_no), 9_900, external_id="POS-A-1")

    again = place_order(("card_no", member.card_no), 9_900, external_id="POS-A-1")
    with pytest.raises(IdempotencyMismatch):  # the same member by phone is another request
        place_order(("phone", "13800138000"), 9_900, external_id="POS-A-1")

    assert first.replayed is False
    assert again == orders.OrderOutcome(
        first.order_id, member.id, first.points_earned, first.tier, replayed=True
    )
    assert count_rows(session, Order) == 1
    books = assert_books_agree(session, member.id)
    assert [e.kind for e in books.entries] == ["earn"]
    assert books.balance == 99


def test_the_same_external_id_on_another_channel_is_another_order(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    first = place_order(("card_no", member.card_no), 1_000, external_id="X-1", channel="pos")
    second = place_order(("card_no", member.card_no), 1_000, external_id="X-1", channel="tmall")

    assert first.order_id != second.order_id
    assert not second.replayed
    assert assert_books_agree(session, member.id).balance == 20


# --- replays compare the whole request ---


def assert_reveals_nothing(error: IdempotencyMismatch) -> None:
    """A reused id is refused with a fixed message: nothing of the first request (its
    member, amount, order) leaks to whoever guessed the id."""
    assert error.details == {}
    assert error.message == MISMATCH_MESSAGE


def test_the_same_instant_written_in_another_offset_is_the_same_order(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    first = order_once(uow, member)
    in_shanghai = (T0 - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=8)))

    again = order_once(uow, member, paid_at=in_shanghai)

    assert (again.order_id, again.replayed) == (first.order_id, True)
    assert count_rows(session, Order) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"member": orders.MemberRef("phone", "13800138000")},  # the same member, named so
        {"member": orders.MemberRef("phone", "13900000001")},  # a member it would create
        {"amount_cents": 12_346},
        {"store_code": "SH-002"},
        {"paid_at": T0 - timedelta(minutes=29)},
        {"items": [item(12_345) | {"quantity": 2}]},
        {"coupon_codes": ["C-1"]},
    ],
    ids=["same-member-by-phone", "other-member", "amount", "store", "paid_at", "items",
         "coupons"],
)  # fmt: skip
def test_an_order_replayed_with_any_field_changed_is_a_mismatch_revealing_nothing(
    uow: UnitOfWork, session: Session, member: Member, change: dict[str, Any]
) -> None:
    first = order_once(uow, member)
    members_before = count_rows(session, Member)

    with pytest.raises(IdempotencyMismatch) as caught:
        order_once(uow, member, **change)

    assert_reveals_nothing(caught.value)
    assert count_rows(session, Order) == 1
    assert count_rows(session, Member) == members_before
    assert assert_books_agree(session, member.id).balance == first.points_earned


@pytest.mark.parametrize(
    "change", [{"amount": 3_000}, {"order_external_id": "O-2"}], ids=["amount", "other-order"]
)
def test_a_refund_id_used_again_for_another_refund_is_a_mismatch_revealing_nothing(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    session: Session,
    member: Member,
    change: dict[str, Any],
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")
    place_order(("card_no", member.card_no), 10_000, external_id="O-2")
    refund(uow, "O-1", "R-1", 4_000)
    again: dict[str, Any] = {"order_external_id": "O-1", "external_id": "R-1", "amount": 4_000}

    with pytest.raises(IdempotencyMismatch) as caught:
        refund(uow, **(again | change))

    assert_reveals_nothing(caught.value)
    assert count_rows(session, Refund) == 1
    assert assert_books_agree(session, member.id).balance == 200 - 40


@pytest.mark.parametrize(
    "change",
    [
        {"points_to_spend": 301},
        {"member": orders.MemberRef("phone", "13800138000")},  # the same member, named so
        {"member": orders.MemberRef("card_no", "999999999999")},  # no such card: not looked up
        {"store_code": "SH-009"},
    ],
    ids=["points", "same-member-by-phone", "other-card", "store"],
)
def test_a_till_spend_replayed_with_any_field_changed_is_a_mismatch_revealing_nothing(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    session: Session,
    member: Member,
    change: dict[str, Any],
) -> None:
    place_order(("card_no", member.card_no), 100_000)
    spend_once(uow, member)

    with pytest.raises(IdempotencyMismatch) as caught:
        spend_once(uow, member, **change)

    assert_reveals_nothing(caught.value)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.kinds()) == (700, ["earn", "spend"])


def test_a_till_retry_after_the_card_qr_expired_answers_the_first_spend(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member, frozen: Any
) -> None:
    """A retry is answered before the member is looked up: the till may retry after the
    QR code it scanned has expired."""
    place_order(("card_no", member.card_no), 50_000)
    by_qr = orders.MemberRef("qr_payload", qr_for(member, T0))
    first = spend_once(uow, member, member=by_qr, points_to_spend=100)

    frozen.shift(timedelta(minutes=5))
    again = spend_once(uow, member, member=by_qr, points_to_spend=100)

    assert first == orders.RedeemOutcome(member.id, 400)
    assert again == orders.RedeemOutcome(member.id, 400, replayed=True)
    assert assert_books_agree(session, member.id).kinds() == ["earn", "spend"]


def test_an_order_recorded_before_fingerprints_is_refused_not_recorded_again(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    """Rows from before the migration have no fingerprint to compare: the id is taken."""
    session.add(
        Order(
            partner_id=SENDER.id,
            channel="pos",
            external_id="OLD-1",
            member_id=member.id,
            paid_at=T0,
            amount_cents=12_345,
            refunded_cents=0,
            points_earned=0,
            points_reversed=0,
        )
    )
    session.flush()

    with pytest.raises(IdempotencyMismatch):
        place_order(("card_no", member.card_no), 12_345, external_id="OLD-1")

    assert count_rows(session, Order) == 1
    assert books_of(session, member.id).entries == []
