"""Tiers: upgrade on the order that crosses a threshold, downgrade only at assessment after
retention, the assessment windows and metrics, and the simulation of proposed thresholds."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AuditEntry
from app.admins.operations import Actor
from app.errors import AlreadyRunning, Conflict, ValidationFailed
from app.members.models import Member
from app.orders import services as orders
from app.points import services as points
from app.readside import members as member_views
from app.tiers import services as tiers
from app.tiers.models import MemberTier, Tier, TierChange
from app.tiers.rules import DEFAULT_POLICY, parse_tier_policy
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules, set_tier_policy
from tests.factories.tiers import TierFactory, make_ladder
from tests.support.books import assert_books_agree, tier_code_of
from tests.support.rows import count_rows
from tests.support.settings import SECRET_KEY

T0 = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
OPERATOR = Actor(type="admin", name="ops-wang", id=3)
PlaceOrder = Callable[..., orders.OrderOutcome]
BASIC_BENEFITS = {"points_multiplier_pct": 100, "discount_pct": 100}  # make_ladder's
# Tiers as the admin API sends them, for the ladder's own use cases.
GOLD = {
    "code": "gold",
    "name": "金卡",
    "rank": 2,
    "threshold": 100_000,
    "benefits": {"points_multiplier_pct": 150},
}
SILVER = {"code": "silver", "name": "银卡", "rank": 1, "threshold": 0, "benefits": {}}


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ladder(session: Session, senders: None, frozen: Any) -> Session:
    """basic 0 (x1), gold 1000 yuan (x1.5), diamond 5000 yuan (x2); a year's spend,
    retained for 30 days."""
    set_points_rules(session)
    make_ladder()
    set_tier_policy(
        session,
        metric="spend_cents",
        window={"kind": "rolling_days", "days": 365},
        retention_days=30,
    )
    return session


def changes_of(session: Session, member_id: int) -> list[TierChange]:
    session.expire_all()
    return list(
        session.scalars(
            select(TierChange).where(TierChange.member_id == member_id).order_by(TierChange.id)
        )
    )


def refund(uow: UnitOfWork, order_external_id: str, amount: int) -> orders.RefundOutcome:
    return orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id=order_external_id,
        external_id=f"R-{order_external_id}-{amount}",
        amount_cents=amount,
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


# --- the card's tier and growth ---


def card_of(uow: UnitOfWork, member_id: int) -> member_views.CardView:
    return member_views.get_card(uow=uow, member_id=member_id, secret=SECRET_KEY, qr_ttl_seconds=60)


def test_the_card_shows_the_tier_held_and_what_the_next_one_needs(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session
) -> None:
    member, top = MemberFactory(), MemberFactory()
    new = card_of(uow, member.id)
    place_order(("card_no", member.card_no), 150_000)  # crosses gold
    place_order(("card_no", member.card_no), 10_000)
    place_order(("card_no", top.card_no), 520_000)  # straight to the top

    card, at_the_top = card_of(uow, member.id), card_of(uow, top.id)

    # A member without a tier row holds the base tier (threshold 0).
    assert new.tier == {"code": "basic", "name": "普卡", "benefits": BASIC_BENEFITS}
    assert new.growth == {
        "metric": "spend_cents",
        "value": 0,
        "next_tier": {"code": "gold", "name": "金卡"},
        "needed": 100_000,
    }
    assert card.tier == {
        "code": "gold",
        "name": "金卡",
        "benefits": {"points_multiplier_pct": 150, "discount_pct": 100},
    }
    assert card.growth == {
        "metric": "spend_cents",
        "value": 160_000,
        "next_tier": {"code": "diamond", "name": "钻石"},
        "needed": 340_000,
    }
    assert at_the_top.tier is not None and at_the_top.tier["code"] == "diamond"
    assert at_the_top.growth == {
        "metric": "spend_cents",
        "value": 520_000,
        "next_tier": None,
        "needed": 0,
    }


def test_a_refund_lowers_the_cards_growth_and_balance_but_not_its_tier(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session
) -> None:
    member = MemberFactory()
    place_order(("card_no", member.card_no), 120_000, external_id="O-1")  # 1,200 points, gold

    refund(uow, "O-1", 60_000)

    card = card_of(uow, member.id)
    assert card.tier is not None and card.tier["code"] == "gold"
    assert card.growth is not None and card.growth["value"] == 60_000
    assert card.points["balance"] == 600


# --- the ladder and the policy (audited) ---


def audit_of(session: Session, target_type: str) -> list[AuditEntry]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.target_type == target_type).order_by(AuditEntry.id)
        )
    )


def test_tiers_are_created_and_changed_audited_and_listed_lowest_rank_first(
    uow: UnitOfWork, session: Session
) -> None:
    for fields in (GOLD, SILVER):
        tiers.create_tier(uow=uow, actor=OPERATOR, fields=fields)

    changed = tiers.update_tier(
        uow=uow, actor=OPERATOR, code="gold", changes={"threshold": 80_000, "name": "黄金卡"}
    )

    assert (changed.code, changed.name, changed.threshold) == ("gold", "黄金卡", 80_000)
    listed = [(t.code, t.name, t.threshold) for t in tiers.list_tiers(uow=uow)]
    assert listed == [("silver", "银卡", 0), ("gold", "黄金卡", 80_000)]
    logged = audit_of(session, "tier")
    assert [(e.action, e.target_id) for e in logged] == [
        ("tier.create", "gold"),
        ("tier.create", "silver"),
        ("tier.update", "gold"),
    ]
    assert {(e.actor_type, e.actor_id, e.actor_name) for e in logged} == {("admin", 3, "ops-wang")}
    assert (logged[0].before, logged[0].after) == (None, GOLD)
    assert logged[2].before == GOLD
    assert logged[2].after == GOLD | {"threshold": 80_000, "name": "黄金卡"}


@pytest.mark.parametrize(
    "twin",
    [GOLD | {"name": "Another", "rank": 9}, GOLD | {"code": "gold2"}],
    ids=["same-code", "same-rank"],
)
def test_a_tier_whose_code_or_rank_is_taken_is_a_conflict_and_changes_nothing(
    uow: UnitOfWork, session: Session, twin: dict[str, Any]
) -> None:
    tiers.create_tier(uow=uow, actor=OPERATOR, fields=GOLD)

    with pytest.raises(Conflict) as caught:
        tiers.create_tier(uow=uow, actor=OPERATOR, fields=twin)

    assert caught.value.details == {"fields": ["code", "rank"]}
    assert [t.code for t in tiers.list_tiers(uow=uow)] == ["gold"]
    assert len(audit_of(session, "tier")) == 1


def test_moving_a_tier_to_a_taken_rank_is_a_conflict_and_changes_nothing(
    uow: UnitOfWork, session: Session
) -> None:
    for fields in (SILVER, GOLD):
        tiers.create_tier(uow=uow, actor=OPERATOR, fields=fields)

    with pytest.raises(Conflict) as caught:
        tiers.update_tier(uow=uow, actor=OPERATOR, code="gold", changes={"rank": 1})

    assert caught.value.details == {"field": "rank"}
    assert [(t.code, t.rank) for t in tiers.list_tiers(uow=uow)] == [("silver", 1), ("gold", 2)]
    assert [e.action for e in audit_of(session, "tier")] == ["tier.create", "tier.create"]


def test_the_default_policy_holds_until_replaced_and_the_card_then_measures_its_metric(
    uow: UnitOfWork, session: Session
) -> None:
    member = MemberFactory()
    assert tiers.get_policy(uow=uow) == DEFAULT_POLICY
    policy = {"metric": "points_earned", "window": {"kind": "calendar_year"}, "retention_days": 90}

    answered = tiers.put_policy(uow=uow, actor=OPERATOR, policy=parse_tier_policy(policy))

    assert answered == policy
    assert tiers.get_policy(uow=uow) == policy
    growth = card_of(uow, member.id).growth
    assert growth is not None and growth["metric"] == "points_earned"
    (logged,) = audit_of(session, "settings")
    assert (logged.action, logged.target_id) == ("tier_policy.update", "tier_policy")
    assert (logged.actor_type, logged.actor_id, logged.actor_name) == ("admin", 3, "ops-wang")
    assert (logged.before, logged.after) == (DEFAULT_POLICY, policy)


# --- simulation ---


def distribution_now(session: Session) -> dict[str, int]:
    """Who holds which tier now, over every active member (the base tier when no row)."""
    session.expire_all()
    ladder = list(session.scalars(select(Tier).order_by(Tier.rank)))
    base = next((tier.code for tier in ladder if tier.threshold <= 0), "none")
    held = dict(session.execute(select(MemberTier.member_id, MemberTier.tier_code)).all())
    active = session.scalars(select(Member.id).where(Member.status == "active")).all()
    counts = Counter({tier.code: 0 for tier in ladder})
    for member_id in active:
        counts[held.get(member_id, base) or "none"] += 1
    return dict(counts)


def snapshot(session: Session) -> Any:
    session.expire_all()
    return (
        sorted(
            (row.member_id, row.tier_code, row.retain_until)
            for row in session.scalars(select(MemberTier))
        ),
        sorted((t.code, t.threshold) for t in session.scalars(select(Tier))),
        count_rows(session, TierChange),
        count_rows(session, AuditEntry),
    )


@pytest.mark.parametrize("seed", [3, 17, 2025])
def test_the_simulation_changes_nothing_and_matches_the_assessment_that_follows(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session, frozen: Any, seed: int
) -> None:
    randomness = random.Random(seed)
    set_tier_policy(
        ladder, metric="spend_cents", window={"kind": "rolling_days", "days": 90}, retention_days=30
    )
    population = MemberFactory.create_batch(30)
    # orders spread over the last 120 days: some fall out of the window, some members are
    # still within the retention of a tier they no longer qualify for
    visits = [
        (randomness.randrange(0, 120 * 24), member)
        for member in population
        for _ in range(randomness.randrange(0, 4))
    ]
    start = T0 - timedelta(days=120)
    for hours, member in sorted(visits, key=lambda visit: visit[0]):
        frozen.move_to(start + timedelta(hours=hours))
        place_order(("card_no", member.card_no), randomness.randrange(1_000, 400_000))
    frozen.move_to(T0)
    proposed = {
        "gold": randomness.randrange(50_000, 150_000),
        "diamond": randomness.randrange(200_000, 600_000),
    }
    before = snapshot(ladder)

    simulated = tiers.simulate_distribution(uow=uow, thresholds=proposed, batch_size=7)

    assert snapshot(ladder) == before
    assert sum(simulated.values()) == count_rows(ladder, Member, Member.status == "active")
    for code, threshold in proposed.items():
        tiers.update_tier(uow=uow, actor=OPERATOR, code=code, changes={"threshold": threshold})
    tiers.assess_tiers(uow=uow, batch_size=7)
    assert distribution_now(ladder) == simulated
    # and the simulation of what is now in force predicts no further change
    assert tiers.simulate_distribution(uow=uow, thresholds={}) == simulated


def test_a_simulation_keeps_members_within_their_retention(
    uow: UnitOfWork, place_order: PlaceOrder, ladder: Session, frozen: Any
) -> None:
    retained, lapsed = MemberFactory(), MemberFactory()
    place_order(("card_no", lapsed.card_no), 120_000)
    frozen.shift(timedelta(days=40))  # lapsed's retention is over
    place_order(("card_no", retained.card_no), 120_000)

    simulated = tiers.simulate_distribution(uow=uow, thresholds={"gold": 200_000})

    assert simulated == {"basic": 1, "gold": 1, "diamond": 0}


@pytest.mark.parametrize(
    ("thresholds", "distribution"),
    [
        ({}, {"basic": 2, "gold": 1, "diamond": 0}),
        ({"gold": 40_000}, {"basic": 1, "gold": 2, "diamond": 0}),
        # The gold member keeps gold above a raised threshold: retention has not run out.
        ({"gold": 200_000}, {"basic": 2, "gold": 1, "diamond": 0}),
        ({"gold": 10_000, "diamond": 100_000}, {"basic": 1, "gold": 1, "diamond": 1}),
    ],
    ids=["as-is", "gold-lower", "gold-higher", "both-lower"],
)
def test_the_simulation_counts_every_member_under_the_proposed_thresholds(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    ladder: Session,
    thresholds: dict[str, int],
    distribution: dict[str, int],
) -> None:
    """Gold by an order of 1,500 yuan, basic with 500 yuan, and one with no order (no tier
    row: the base tier)."""
    big, small, _idle = MemberFactory.create_batch(3)
    place_order(("card_no", big.card_no), 150_000)
    place_order(("card_no", small.card_no), 50_000)
    before = snapshot(ladder)

    assert tiers.simulate_distribution(uow=uow, thresholds=thresholds) == distribution
    assert snapshot(ladder) == before


def test_one_simulation_runs_at_a_time_and_a_finished_one_lets_the_next_run(
    uow: UnitOfWork, ladder: Session, redis: Any
) -> None:
    MemberFactory()
    running = redis.lock(tiers.SIMULATION_LOCK, timeout=30)
    assert running.acquire(blocking=False)
    try:
        with pytest.raises(AlreadyRunning) as caught:
            tiers.simulate_distribution_once(uow=uow, redis=redis, thresholds={}, lock_seconds=30)
    finally:
        running.release()

    answer = tiers.simulate_distribution_once(uow=uow, redis=redis, thresholds={}, lock_seconds=30)

    assert (caught.value.status, caught.value.code) == (409, "already_running")
    assert answer == {"basic": 1, "gold": 0, "diamond": 0}
    assert not redis.exists(tiers.SIMULATION_LOCK)


def test_an_unknown_tier_code_in_the_thresholds_is_refused(
    uow: UnitOfWork, ladder: Session
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        tiers.simulate_distribution(uow=uow, thresholds={"gold": 1, "platinum": 2, "vip": 3})

    assert caught.value.details == {"field": "thresholds", "codes": ["platinum", "vip"]}


def test_points_earned_metric_does_not_count_refunded_points(
    uow: UnitOfWork, session: Session, frozen: Any, place_order: Any
) -> None:
    from app import clock
    from app.tiers.operations import metric_value, tier_policy

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
