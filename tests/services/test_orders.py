"""Orders and refunds from store systems, and spending points at the till."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    InsufficientPoints,
    NotFound,
    ValidationFailed,
)
from app.external_ids.models import ExternalRequest
from app.external_ids.replay import MISMATCH_MESSAGE
from app.members import rules as member_rules
from app.members.models import PROVIDER_CHANNEL, Member, MemberIdentity
from app.orders import services as orders
from app.orders.models import Order, OrderItem, Refund
from app.points import services as points_services
from app.points.models import PointsEntry
from app.readside import members as member_views
from app.uow import UnitOfWork
from tests.factories import IdentityFactory, MemberFactory
from tests.factories.orders import item
from tests.factories.partners import OTHER_SENDER, SENDER, StoreSender
from tests.factories.settings import set_points_rules
from tests.factories.tiers import TierFactory
from tests.support.books import assert_books_agree, books_of
from tests.support.rows import count_rows
from tests.support.settings import SECRET_KEY

T0 = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
PlaceOrder = Callable[..., orders.OrderOutcome]


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rules_set(session: Session, senders: None, frozen: Any) -> Session:
    set_points_rules(session)
    return session


@pytest.fixture
def member(rules_set: Session) -> Member:
    member = MemberFactory(phone="13800138000", unionid="u-member-1")
    IdentityFactory(member=member, provider=PROVIDER_CHANNEL, app_id="pos", external_id="POS-9")
    return member


def refund(
    uow: UnitOfWork, order_external_id: str, external_id: str, amount: int, channel: str = "pos"
) -> orders.RefundOutcome:
    return orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel=channel,
        external_order_id=order_external_id,
        external_id=external_id,
        amount_cents=amount,
    )


def redeem(
    uow: UnitOfWork,
    member: Member,
    points_to_spend: int,
    external_id: str,
    sender: StoreSender = SENDER,
) -> orders.RedeemOutcome:
    return orders.redeem_at_till(
        uow=uow,
        sender=sender,
        secret=SECRET_KEY,
        member=orders.MemberRef("card_no", member.card_no),
        points_to_spend=points_to_spend,
        external_id=external_id,
    )


def outcome_external_id(session: Session, order_id: int) -> str:
    order = session.get(Order, order_id)
    assert order is not None
    return order.external_id


def qr_for(member: Member, now: datetime, ttl_seconds: int = 60) -> str:
    qr = member_rules.issue_card_qr(card_no=member.card_no, now=now, ttl_seconds=ttl_seconds)
    return member_rules.encode_card_qr(SECRET_KEY, qr)


# --- finding the member ---


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("card_no", None),
        ("phone", "13800138000"),
        ("phone", "+86 138-0013-8000"),  # as some tills send it
        ("unionid", "u-member-1"),
        ("qr_payload", None),
        ("channel_member_id", "POS-9"),
    ],
)
def test_an_order_finds_its_member_by_every_kind_of_reference(
    place_order: PlaceOrder, session: Session, member: Member, kind: str, value: str | None
) -> None:
    if kind == "card_no":
        value = member.card_no
    elif kind == "qr_payload":
        value = qr_for(member, T0)
    members_before = count_rows(session, Member)

    outcome = place_order((kind, value), 12_345)

    assert outcome.member_id == member.id
    assert outcome.points_earned == 123
    assert outcome.replayed is False
    assert count_rows(session, Member) == members_before
    assert assert_books_agree(session, member.id).balance == 123


def test_a_channel_member_id_of_another_channel_is_another_member(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    outcome = place_order(("channel_member_id", "POS-9"), 1_000, channel="tmall")

    assert outcome.member_id != member.id
    identity = session.scalars(
        select(MemberIdentity).where(MemberIdentity.member_id == outcome.member_id)
    ).one()
    assert (identity.provider, identity.app_id, identity.external_id) == (
        PROVIDER_CHANNEL,
        "tmall",
        "POS-9",
    )


@pytest.mark.parametrize(
    ("kind", "value", "field", "expected"),
    [
        ("phone", "13912345678", "phone", "13912345678"),
        ("phone", "+86 139-1234-5678", "phone", "13912345678"),
        ("unionid", "u-new-buyer", "unionid", "u-new-buyer"),
    ],
)
def test_an_unknown_phone_or_unionid_creates_a_member_with_the_sign_up_bonus(
    place_order: PlaceOrder,
    rules_set: Session,
    kind: str,
    value: str,
    field: str,
    expected: str,
) -> None:
    set_points_rules(rules_set, signup_bonus=50)

    outcome = place_order((kind, value), 20_000, channel="jd")

    created = rules_set.get(Member, outcome.member_id)
    assert created is not None
    assert getattr(created, field) == expected
    assert created.registration_channel == "jd"
    assert member_rules.is_valid_card_no(created.card_no)
    books = assert_books_agree(rules_set, created.id)
    assert books.balance == 50 + 200
    assert [(e.kind, e.delta, e.reason_code, e.note) for e in books.entries] == [
        ("earn", 50, "signup", None),
        ("earn", 200, "order", f"order jd/{outcome_external_id(rules_set, outcome.order_id)}"),
    ]
    assert outcome.points_earned == 200  # the order's own points, without the bonus


def test_an_unknown_channel_member_id_creates_a_member_with_that_identity(
    place_order: PlaceOrder, rules_set: Session
) -> None:
    set_points_rules(rules_set, signup_bonus=50)

    outcome = place_order(("channel_member_id", "YZ-1001"), 5_000, channel="youzan")
    again = place_order(("channel_member_id", "YZ-1001"), 5_000, channel="youzan")

    assert again.member_id == outcome.member_id
    identity = rules_set.scalars(
        select(MemberIdentity).where(MemberIdentity.member_id == outcome.member_id)
    ).one()
    assert (identity.provider, identity.app_id, identity.external_id) == (
        PROVIDER_CHANNEL,
        "youzan",
        "YZ-1001",
    )
    books = assert_books_agree(rules_set, outcome.member_id)
    assert books.balance == 50 + 50 + 50  # the bonus once, two orders
    assert [e.reason_code for e in books.entries].count("signup") == 1


def test_without_a_sign_up_bonus_a_created_member_earns_only_the_order(
    place_order: PlaceOrder, rules_set: Session
) -> None:
    outcome = place_order(("phone", "13700000001"), 3_000)

    books = assert_books_agree(rules_set, outcome.member_id)
    assert [(e.kind, e.delta) for e in books.entries] == [("earn", 30)]


def test_an_unknown_card_number_is_not_found_and_creates_nothing(
    place_order: PlaceOrder, rules_set: Session
) -> None:
    members_before = count_rows(rules_set, Member)

    with pytest.raises(NotFound) as caught:
        place_order(("card_no", "800000000009"), 5_000)

    assert caught.value.details == {"field": "member.card_no"}
    assert count_rows(rules_set, Member) == members_before
    assert count_rows(rules_set, Order) == 0


def test_an_expired_card_qr_is_a_conflict(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    stale = qr_for(member, T0 - timedelta(minutes=10), ttl_seconds=60)

    with pytest.raises(Conflict) as caught:
        place_order(("qr_payload", stale), 5_000)

    assert caught.value.details["reason"] == "qr_expired"
    assert count_rows(session, Order) == 0
    assert books_of(session, member.id).entries == []


def test_a_tampered_card_qr_is_invalid(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    payload = qr_for(member, T0)
    forged = payload[:-1] + ("0" if payload[-1] != "0" else "1")

    with pytest.raises(ValidationFailed):
        place_order(("qr_payload", forged), 5_000)
    assert count_rows(session, Order) == 0


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


def test_the_order_and_its_items_are_stored(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    outcome = orders.record_order(
        uow=uow,
        sender=SENDER,
        secret=SECRET_KEY,
        channel="pos",
        external_id="POS-ITEMS",
        member=orders.MemberRef("card_no", member.card_no),
        paid_at=T0 - timedelta(minutes=5),
        amount_cents=15_000,
        items=[item(10_000, "SKU-TEA"), item(5_000, "SKU-CUP")],
        store_code="SH-001",
        coupon_codes=["C-1"],
    )

    order = session.get(Order, outcome.order_id)
    assert order is not None
    assert (order.amount_cents, order.points_earned, order.store_code) == (15_000, 150, "SH-001")
    assert order.paid_at == T0 - timedelta(minutes=5)
    assert order.coupon_codes == ["C-1"]
    skus = session.scalars(
        select(OrderItem.sku).where(OrderItem.order_id == order.id).order_by(OrderItem.sku)
    ).all()
    assert skus == ["SKU-CUP", "SKU-TEA"]


# --- how many points ---


@pytest.mark.parametrize(
    ("amount", "per_yuan", "multiplier_pct", "expected"),
    [
        (12_345, 1, 100, 123),
        (99, 1, 100, 0),
        (12_399, 2, 150, 371),  # floor(123.99 * 2 * 1.5) = floor(371.97)
        (66_667, 1, 150, 1000),  # floor(1000.005)
        (100_001, 3, 125, 3750),  # floor(1000.01 * 3 * 1.25) = floor(3750.0375)
    ],
)
def test_points_are_the_floor_of_yuan_times_rate_times_the_tier_multiplier(
    place_order: PlaceOrder,
    rules_set: Session,
    member: Member,
    amount: int,
    per_yuan: int,
    multiplier_pct: int,
    expected: int,
) -> None:
    set_points_rules(rules_set, points_per_yuan=per_yuan)
    TierFactory(
        code="base", rank=1, threshold=0, benefits={"points_multiplier_pct": multiplier_pct}
    )

    outcome = place_order(("card_no", member.card_no), amount)

    assert outcome.points_earned == expected
    books = assert_books_agree(rules_set, member.id)
    assert books.balance == expected
    assert [e.kind for e in books.entries] == (["earn"] if expected else [])


@pytest.mark.parametrize(
    ("birthday", "paid_at", "expected"),
    [
        # 2025-05-31 16:30 UTC is already 1 June in Shanghai: a June birthday counts
        (date(1990, 6, 20), datetime(2025, 5, 31, 16, 30, tzinfo=UTC), 246),
        (date(1990, 5, 20), datetime(2025, 5, 31, 16, 30, tzinfo=UTC), 123),
        (date(1990, 5, 20), datetime(2025, 5, 31, 15, 30, tzinfo=UTC), 246),
        (None, datetime(2025, 5, 31, 16, 30, tzinfo=UTC), 123),
    ],
)
def test_the_birthday_month_multiplier_follows_the_business_time_zone(
    place_order: PlaceOrder,
    rules_set: Session,
    birthday: date | None,
    paid_at: datetime,
    expected: int,
) -> None:
    set_points_rules(rules_set, birthday_month_multiplier_pct=200)
    member = MemberFactory(birthday=birthday)

    outcome = place_order(("card_no", member.card_no), 12_345, paid_at=paid_at)

    assert outcome.points_earned == expected


def test_tier_and_birthday_multipliers_compound_with_one_floor(
    place_order: PlaceOrder, rules_set: Session
) -> None:
    set_points_rules(rules_set, points_per_yuan=2, birthday_month_multiplier_pct=150)
    TierFactory(code="base", rank=1, threshold=0, benefits={"points_multiplier_pct": 125})
    member = MemberFactory(birthday=date(1992, 6, 3))

    outcome = place_order(("card_no", member.card_no), 10_050)

    # 100.50 * 2 * 1.25 * 1.5 = 376.875: floored once, not after each multiplier
    assert outcome.points_earned == 376


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


# --- what is stored with an order ---


def test_each_item_line_is_stored_as_the_store_system_sent_it(
    place_order: PlaceOrder, session: Session, member: Member
) -> None:
    outcome = place_order(("card_no", member.card_no), 12_345, external_id="POS-LINES")

    order = session.get(Order, outcome.order_id)
    assert order is not None
    assert (order.channel, order.external_id, order.member_id) == ("pos", "POS-LINES", member.id)
    lines = session.execute(
        select(
            OrderItem.sku,
            OrderItem.name,
            OrderItem.category,
            OrderItem.brand,
            OrderItem.quantity,
            OrderItem.amount_cents,
        ).where(OrderItem.order_id == order.id)
    ).all()
    assert [tuple(line) for line in lines] == [("SKU-1", "茶叶礼盒", "tea", "huiyuan", 1, 12_345)]


def test_a_member_created_by_a_channel_member_id_registers_on_that_channel(
    place_order: PlaceOrder, rules_set: Session
) -> None:
    on_pos = place_order(("channel_member_id", "TM-42"), 1_000, channel="pos")
    on_jd = place_order(("channel_member_id", "TM-42"), 1_000, channel="jd")

    assert on_jd.member_id != on_pos.member_id  # a channel's ids name members of it only
    created = [rules_set.get(Member, outcome.member_id) for outcome in (on_pos, on_jd)]
    assert [member.registration_channel for member in created if member] == ["pos", "jd"]


# --- replays compare the whole request ---


def order_once(
    uow: UnitOfWork, owner: Member, *, sender: StoreSender = SENDER, **changes: Any
) -> orders.OrderOutcome:
    """record_order of one fixed till order of 123.45 yuan for ``owner``, with ``changes``."""
    request: dict[str, Any] = {
        "channel": "pos",
        "external_id": "POS-FP-1",
        "member": orders.MemberRef("card_no", owner.card_no),
        "paid_at": T0 - timedelta(minutes=30),
        "amount_cents": 12_345,
        "items": [item(12_345)],
        "store_code": "SH-001",
        "coupon_codes": None,
    } | changes
    return orders.record_order(uow=uow, secret=SECRET_KEY, sender=sender, **request)


def spend_once(
    uow: UnitOfWork, owner: Member, *, sender: StoreSender = SENDER, **changes: Any
) -> orders.RedeemOutcome:
    """redeem_at_till of 300 points by ``owner``'s card, with ``changes``."""
    request: dict[str, Any] = {
        "member": orders.MemberRef("card_no", owner.card_no),
        "points_to_spend": 300,
        "external_id": "TILL-FP-1",
        "store_code": "SH-001",
    } | changes
    return orders.redeem_at_till(uow=uow, secret=SECRET_KEY, sender=sender, **request)


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


# --- each partner sees its own ---


def test_orders_refunds_and_till_spends_record_their_partner(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")
    refund(uow, "O-1", "R-1", 1_000)
    redeem(uow, member, 5, "TILL-1")

    session.expire_all()
    assert session.scalars(select(Order.partner_id)).all() == [SENDER.id]
    assert session.scalars(select(Refund.partner_id)).all() == [SENDER.id]
    requests = session.execute(
        select(ExternalRequest.kind, ExternalRequest.partner_id).order_by(ExternalRequest.id)
    ).all()
    assert [tuple(row) for row in requests] == [
        ("order", SENDER.id),
        ("refund", SENDER.id),
        ("till_spend", SENDER.id),
    ]


def test_two_partners_may_use_one_external_id_each_for_its_own_order(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    mine = order_once(uow, member, external_id="SAME-1")

    theirs = order_once(
        uow, member, sender=OTHER_SENDER, external_id="SAME-1", amount_cents=500, items=[item(500)]
    )

    assert not theirs.replayed  # neither a replay of the first nor a mismatch
    assert theirs.order_id != mine.order_id
    assert count_rows(session, Order) == 2
    assert assert_books_agree(session, member.id).balance == 123 + 5


def test_another_partners_order_is_not_found_to_a_refund_and_stays_untouched(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000, external_id="O-1")  # from SENDER

    with pytest.raises(NotFound) as caught:
        orders.record_refund(
            uow=uow,
            sender=OTHER_SENDER,
            channel="pos",
            external_order_id="O-1",
            external_id="R-1",
            amount_cents=10_000,
        )

    assert caught.value.details == {"field": "external_order_id"}
    assert count_rows(session, Refund) == 0
    order = session.scalars(select(Order).where(Order.external_id == "O-1")).one()
    assert order.refunded_cents == 0
    assert assert_books_agree(session, member.id).balance == 100


# --- channels a partner was given ---

POS_ONLY = StoreSender(id=SENDER.id, channels=("pos",))


def test_a_partner_posts_orders_only_on_the_channels_it_was_given(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    with pytest.raises(Forbidden) as caught:
        order_once(uow, member, sender=POS_ONLY, channel="tmall")

    assert caught.value.details == {"reason": "channel_not_allowed", "channel": "tmall"}
    assert count_rows(session, Order) == 0
    assert order_once(uow, member, sender=POS_ONLY).points_earned == 123


def test_a_refund_on_a_channel_not_given_is_forbidden(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    order_once(uow, member, sender=POS_ONLY)

    with pytest.raises(Forbidden) as caught:
        orders.record_refund(
            uow=uow,
            sender=POS_ONLY,
            channel="jd",
            external_order_id="POS-FP-1",
            external_id="R-1",
            amount_cents=1_000,
        )

    assert caught.value.details == {"reason": "channel_not_allowed", "channel": "jd"}
    assert count_rows(session, Refund) == 0


def test_a_spend_by_channel_member_id_on_a_channel_not_given_is_forbidden(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 10_000)
    trusted_pos = StoreSender(id=SENDER.id, trusted=True, channels=("pos",))

    with pytest.raises(Forbidden) as caught:
        spend_once(
            uow,
            member,
            sender=trusted_pos,
            member=orders.MemberRef("channel_member_id", "TM-1"),
            channel="tmall",
            points_to_spend=1,
        )

    assert caught.value.details == {"reason": "channel_not_allowed", "channel": "tmall"}
    assert assert_books_agree(session, member.id).kinds() == ["earn"]


# --- spending needs the member at the till, unless the partner is trusted ---

UNTRUSTED = StoreSender(id=SENDER.id, trusted=False)
BARE_REFERENCES = [
    ("card_no", None),
    ("phone", "13800138000"),
    ("unionid", "u-member-1"),
    ("channel_member_id", "POS-9"),
]


def reference(member: Member, kind: str, value: str | None) -> orders.MemberRef:
    return orders.MemberRef(kind, value or member.card_no)


@pytest.mark.parametrize(("kind", "value"), BARE_REFERENCES)
def test_an_untrusted_partner_cannot_spend_by_a_bare_reference(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    session: Session,
    member: Member,
    kind: str,
    value: str | None,
) -> None:
    place_order(("card_no", member.card_no), 100_000)

    with pytest.raises(Forbidden) as caught:
        spend_once(
            uow,
            member,
            sender=UNTRUSTED,
            member=reference(member, kind, value),
            channel="pos" if kind == "channel_member_id" else "",
        )

    assert caught.value.details == {"reason": "member_not_present", "field": f"member.{kind}"}
    assert assert_books_agree(session, member.id).kinds() == ["earn"]


def test_an_untrusted_partner_spends_with_the_card_qr_code(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, member: Member
) -> None:
    place_order(("card_no", member.card_no), 100_000)

    outcome = spend_once(
        uow, member, sender=UNTRUSTED, member=orders.MemberRef("qr_payload", qr_for(member, T0))
    )

    assert outcome == orders.RedeemOutcome(member.id, 700)


@pytest.mark.parametrize(("kind", "value"), BARE_REFERENCES)
def test_a_trusted_partner_spends_by_any_reference(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    session: Session,
    member: Member,
    kind: str,
    value: str | None,
) -> None:
    place_order(("card_no", member.card_no), 100_000)

    outcome = spend_once(
        uow,
        member,
        member=reference(member, kind, value),
        channel="pos" if kind == "channel_member_id" else "",
    )

    assert outcome == orders.RedeemOutcome(member.id, 700)
    assert assert_books_agree(session, member.id).balance == 700


@pytest.mark.parametrize(("kind", "value"), BARE_REFERENCES)
def test_an_untrusted_partner_still_posts_orders_by_any_reference(
    uow: UnitOfWork, session: Session, member: Member, kind: str, value: str | None
) -> None:
    """Being present matters for spending only: an order only adds points."""
    outcome = order_once(uow, member, sender=UNTRUSTED, member=reference(member, kind, value))

    assert outcome.member_id == member.id
    assert assert_books_agree(session, member.id).balance == 123
