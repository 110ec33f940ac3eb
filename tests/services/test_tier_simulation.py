"""The simulation of proposed thresholds: it changes nothing, counts every member the way the
assessment that follows would (members within their retention keep their tier), runs one at
a time, and refuses unknown tier codes."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AuditEntry
from app.errors import AlreadyRunning, ValidationFailed
from app.members.models import Member
from app.tiers import services as tiers
from app.tiers.models import MemberTier, Tier, TierChange
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.settings import set_tier_policy
from tests.support.clock import T0
from tests.support.orders import PlaceOrder
from tests.support.rows import count_rows
from tests.support.tiers import OPERATOR

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
