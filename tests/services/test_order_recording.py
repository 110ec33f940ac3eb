"""Recording an order from a store system: finding its member by every kind of reference,
or creating one; how many points it earns; and what is stored with it."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, ValidationFailed
from app.members import rules as member_rules
from app.members.models import PROVIDER_CHANNEL, Member, MemberIdentity
from app.orders import services as orders
from app.orders.models import Order, OrderItem
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.orders import item
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules
from tests.factories.tiers import TierFactory
from tests.support.books import assert_books_agree, books_of
from tests.support.clock import T0
from tests.support.orders import PlaceOrder, qr_for
from tests.support.rows import count_rows
from tests.support.settings import SECRET_KEY


def outcome_external_id(session: Session, order_id: int) -> str:
    order = session.get(Order, order_id)
    assert order is not None
    return order.external_id


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


# --- what is stored with an order ---


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
