"""How a member's tier changes: up at once on the order that crosses a threshold, down only
at assessment after the retention period, never on a refund; the assessment's windows
(rolling, calendar year) and metrics (spend, points earned net of refunds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.orders import services as orders
from app.points import services as points
from app.readside import members as member_views
from app.tiers import services as tiers
from app.tiers.models import MemberTier, TierChange
from app.tiers.operations import metric_value, tier_policy
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules, set_tier_policy
from tests.factories.tiers import TierFactory
from tests.support.books import assert_books_agree, tier_code_of
from tests.support.clock import T0
from tests.support.orders import PlaceOrder
from tests.support.tiers import OPERATOR, refund


def changes_of(session: Session, member_id: int) -> list[TierChange]:
    session.expire_all()
    return list(
        session.scalars(
            select(TierChange).where(TierChange.member_id == member_id).order_by(TierChange.id)
        )
    )


# --- upgrades ---


def test_the_order_that_crosses_a_threshold_upgrades_at_once(
    place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()
    first = place_order(("card_no", member.card_no), 60_000)
    assert first.tier is not None and first.tier["code"] == "basic"
    assert changes_of(ladder, member.id) == []

    crossing = place_order(("card_no", member.card_no), 40_000)

    assert crossing.tier == {
        "code": "gold",
        "name": "金卡",
        "benefits": {"points_multiplier_pct": 150, "discount_pct": 100},
    }
    assert tier_code_of(ladder, member.id) == "gold"
    (change,) = changes_of(ladder, member.id)
    assert (change.from_code, change.to_code) == ("basic", "gold")
    assert change.reason == f"order {crossing.order_id}"
    assert change.metric_value == 100_000
    row = ladder.get(MemberTier, member.id)
    assert row is not None and row.retain_until == T0 + timedelta(days=30)


def test_an_order_can_lift_over_two_tiers_in_one_change(
    place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()

    outcome = place_order(("card_no", member.card_no), 520_000)

    assert outcome.tier is not None and outcome.tier["code"] == "diamond"
    assert [(c.from_code, c.to_code) for c in changes_of(ladder, member.id)] == [
        ("basic", "diamond")
    ]


def test_the_new_tiers_multiplier_applies_from_the_next_order(
    place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()

    crossing = place_order(("card_no", member.card_no), 100_000)
    next_one = place_order(("card_no", member.card_no), 10_001)

    assert crossing.points_earned == 1_000  # earned at basic, then lifted
    assert next_one.points_earned == 150  # floor(100.01 * 1.5)
    assert assert_books_agree(ladder, member.id).balance == 1_150


def test_a_replayed_crossing_order_does_not_change_the_tier_twice(
    place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()
    first = place_order(("card_no", member.card_no), 100_000, external_id="BIG")

    again = place_order(("card_no", member.card_no), 100_000, external_id="BIG")

    assert again.replayed and again.tier == first.tier
    assert len(changes_of(ladder, member.id)) == 1


# --- refunds and assessment ---


def test_a_refund_never_downgrades_on_the_spot(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()
    place_order(("card_no", member.card_no), 100_000, external_id="O-1")

    refund(uow, "O-1", 100_000)

    assert tier_code_of(ladder, member.id) == "gold"
    assert len(changes_of(ladder, member.id)) == 1


def test_assessment_downgrades_only_after_the_retention_period(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session, frozen: Any
) -> None:
    member = MemberFactory()
    keeper = MemberFactory()
    place_order(("card_no", member.card_no), 100_000, external_id="O-1")
    place_order(("card_no", keeper.card_no), 100_000, external_id="O-2")
    refund(uow, "O-1", 30_000)  # the window value falls to 700 yuan

    frozen.shift(timedelta(days=29, hours=23))
    during = tiers.assess_tiers(uow=uow)
    assert tier_code_of(ladder, member.id) == "gold"
    assert during.get("downgraded", 0) == 0

    frozen.shift(timedelta(hours=1))  # retention ends: T0 + 30 days
    after = tiers.assess_tiers(uow=uow)

    assert after["downgraded"] == 1
    assert after["assessed"] >= 2
    assert tier_code_of(ladder, member.id) == "basic"
    assert tier_code_of(ladder, keeper.id) == "gold"  # still qualifies
    last = changes_of(ladder, member.id)[-1]
    assert (last.from_code, last.to_code, last.reason) == ("gold", "basic", "assessment")
    assert last.metric_value == 70_000
    assert len(changes_of(ladder, keeper.id)) == 1
    detail = member_views.member_detail(uow=uow, member_id=member.id)  # what operators see
    assert detail.tier is not None and detail.tier["code"] == "basic"
    assert [c.reason for c in detail.tier_history] == [
        "assessment",
        changes_of(ladder, member.id)[0].reason,
    ]

    assert tiers.assess_tiers(uow=uow).get("downgraded", 0) == 0  # a rerun changes nothing
    assert len(changes_of(ladder, member.id)) == 2


def test_a_rolling_window_forgets_old_orders(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session, frozen: Any
) -> None:
    set_tier_policy(
        ladder, metric="spend_cents", window={"kind": "rolling_days", "days": 90}, retention_days=0
    )
    member = MemberFactory()
    place_order(("card_no", member.card_no), 100_000)
    assert tier_code_of(ladder, member.id) == "gold"

    frozen.shift(timedelta(days=89))
    tiers.assess_tiers(uow=uow)
    assert tier_code_of(ladder, member.id) == "gold"

    frozen.shift(timedelta(days=2))
    tiers.assess_tiers(uow=uow)
    assert tier_code_of(ladder, member.id) == "basic"


def test_a_calendar_year_window_starts_at_midnight_in_shanghai(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session, frozen: Any
) -> None:
    set_tier_policy(
        ladder, metric="spend_cents", window={"kind": "calendar_year"}, retention_days=0
    )
    member = MemberFactory()
    frozen.move_to(datetime(2025, 12, 31, 15, 0, tzinfo=UTC))  # 23:00 on 31 Dec in Shanghai
    place_order(("card_no", member.card_no), 60_000)
    place_order(("card_no", member.card_no), 40_000)
    assert tier_code_of(ladder, member.id) == "gold"

    frozen.move_to(datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC))
    tiers.assess_tiers(uow=uow)
    assert tier_code_of(ladder, member.id) == "gold"

    frozen.move_to(datetime(2025, 12, 31, 16, 0, 1, tzinfo=UTC))  # 00:00:01 on 1 Jan 2026
    tiers.assess_tiers(uow=uow)
    assert tier_code_of(ladder, member.id) == "basic"
    assert changes_of(ladder, member.id)[-1].metric_value == 0


def test_the_points_earned_metric_counts_earned_points_not_spend(
    uow: UnitOfWork, place_order: PlaceOrder, session: Session, frozen: Any
) -> None:
    set_points_rules(session)
    TierFactory(code="basic", rank=1, threshold=0)
    TierFactory(code="gold", rank=2, threshold=2_000)
    set_tier_policy(
        session,
        metric="points_earned",
        window={"kind": "rolling_days", "days": 365},
        retention_days=0,
    )
    member = MemberFactory()

    first = place_order(("card_no", member.card_no), 150_000)  # 1500 points; 1500 yuan
    assert first.tier is not None and first.tier["code"] == "basic"
    points.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=5_000, reason="not earned"
    )
    tiers.assess_tiers(uow=uow)
    assert tier_code_of(session, member.id) is None  # still the base tier, no row

    crossing = place_order(("card_no", member.card_no), 50_000)  # 500 more: 2000 earned

    assert crossing.tier is not None and crossing.tier["code"] == "gold"
    assert changes_of(session, member.id)[-1].metric_value == 2_000


def test_assessment_catches_up_upgrades_after_thresholds_are_lowered(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()
    place_order(("card_no", member.card_no), 80_000)
    assert tier_code_of(ladder, member.id) is None

    tiers.update_tier(uow=uow, actor=OPERATOR, code="gold", changes={"threshold": 80_000})
    counts = tiers.assess_tiers(uow=uow)

    assert counts["upgraded"] == 1
    assert tier_code_of(ladder, member.id) == "gold"
    assert changes_of(ladder, member.id)[-1].reason == "assessment"


def test_points_earned_metric_does_not_count_refunded_points(
    uow: UnitOfWork, session: Session, frozen: Any, place_order: Any
) -> None:
    set_points_rules(session)
    set_tier_policy(session, metric="points_earned")
    member = MemberFactory()
    place_order(("card_no", member.card_no), 50_000, external_id="PE-1")  # 500 points
    orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id="PE-1",
        external_id="PE-R",
        amount_cents=20_000,
    )

    value = metric_value(session, member.id, tier_policy(session), clock.now())

    assert value == 300
