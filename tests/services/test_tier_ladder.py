"""The tier ladder and policy, and the card: tiers created and changed by operators, audited,
listed lowest rank first, a taken code or rank refused; the policy in force until replaced;
the tier the card shows and what the next one needs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AuditEntry
from app.errors import Conflict
from app.readside import members as member_views
from app.tiers import services as tiers
from app.tiers.rules import DEFAULT_POLICY, parse_tier_policy
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.support.orders import PlaceOrder
from tests.support.settings import SECRET_KEY
from tests.support.tiers import OPERATOR, refund

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
