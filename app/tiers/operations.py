"""Tier steps other contexts call inside their transaction: the tier an order earns,
the multiplier it brings, what the card shows, and the merge step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app import clock
from app.caching import cached
from app.members.models import Member
from app.outbox.events import Event, Topic
from app.outbox.operations import emit
from app.settings.operations import read_typed
from app.tiers import rules
from app.tiers.metrics import METRICS, OrderFacts
from app.tiers.models import MemberTier, Tier, TierChange

POLICY_KEY = "tier_policy"


def tier_policy(session: Session) -> rules.TierPolicy:
    """The tier policy in force, parsed once per use case (defaults when none is set)."""
    return read_typed(session, POLICY_KEY, rules.DEFAULT_POLICY, rules.parse_tier_policy)


def load_tiers(session: Session) -> list[rules.TierRef]:
    """The ladder, read once per use case (session) and kept by the process between use
    cases (app.caching); each caller gets its own copies of the benefits."""
    ladder: tuple[rules.TierRef, ...] | None = session.info.get("tiers")
    if ladder is None:
        ladder = cached(session, "tiers", lambda: _read_ladder(session))
        session.info["tiers"] = ladder
    return [replace(tier, benefits=dict(tier.benefits)) for tier in ladder]


def _read_ladder(session: Session) -> tuple[rules.TierRef, ...]:
    rows = session.scalars(select(Tier).order_by(Tier.rank))
    return tuple(rules.TierRef(t.code, t.name, t.rank, t.threshold, dict(t.benefits)) for t in rows)


def tier_view(tier: rules.TierRef | None) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {"code": tier.code, "name": tier.name, "benefits": tier.benefits}


@dataclass(frozen=True)
class Standing:
    tier: rules.TierRef | None
    retain_until: datetime | None


def standing(session: Session, member_id: int, tiers: list[rules.TierRef]) -> Standing:
    """The member's tier: their recorded one, or the base tier (threshold 0) if none."""
    return standing_of(session.get(MemberTier, member_id), tiers)


def standing_of(row: MemberTier | None, tiers: list[rules.TierRef]) -> Standing:
    """The standing a member's tier row (already read) gives on this ladder."""
    if row is None:
        return Standing(rules.tier_for_value(tiers, 0), None)
    by_code = {tier.code: tier for tier in tiers}
    return Standing(by_code.get(row.tier_code or ""), row.retain_until)


def multiplier_of(tier: rules.TierRef | None) -> int:
    """The points multiplier a tier brings (100: none)."""
    return int(tier.benefits.get("points_multiplier_pct", 100)) if tier else 100


def window_now(policy: rules.TierPolicy) -> tuple[datetime, datetime]:
    """[start, end) of the assessment window that contains this moment."""
    return rules.window_bounds(policy.window, clock.now(), clock.business_tz())


def metric_read(policy: rules.TierPolicy) -> tuple[Callable[[], Any], dict[str, datetime]] | None:
    """A builder of one member's metric as a scalar subquery correlated to ``Member.id``
    (its window bound as ``metric_start`` and ``metric_end``) and those bounds, when the
    metric's source offers one and what an order adds to it (else None: read the value
    once the order is in, with ``metric_value``). Built only when a statement is first
    built with it."""
    source = METRICS.source(policy.metric)
    one_member = source.one_member
    if one_member is None or source.gained_by_order is None:
        return None
    start, end = window_now(policy)

    def build() -> Any:
        return one_member(Member.id, bindparam("metric_start"), bindparam("metric_end"))

    return build, {"metric_start": start, "metric_end": end}


def value_after_order(policy: rules.TierPolicy, before: int, order: OrderFacts) -> int:
    """The member's metric once ``order`` is recorded, from its value before (only for a
    metric with a subquery: see ``metric_subquery``)."""
    gained = METRICS.source(policy.metric).gained_by_order
    if gained is None:
        raise ValueError(f"the {policy.metric} metric is read, not added to")
    return before + gained(order, *window_now(policy))


def metric_values(
    session: Session, policy: rules.TierPolicy, now: datetime, member_ids: list[int] | None
) -> dict[int, int]:
    start, end = rules.window_bounds(policy.window, now, clock.business_tz())
    return METRICS.source(policy.metric).values(session, start, end, member_ids)


def metric_value(session: Session, member_id: int, policy: rules.TierPolicy, now: datetime) -> int:
    return metric_values(session, policy, now, [member_id]).get(member_id, 0)


def current_tier(session: Session, member_id: int) -> rules.TierRef | None:
    """The tier the member holds now (no metric read: the till needs only this)."""
    return standing(session, member_id, load_tiers(session)).tier


def multiplier_pct(session: Session, member_id: int) -> int:
    return multiplier_of(current_tier(session, member_id))


def change_tier(
    session: Session,
    *,
    member_id: int,
    before: Standing,
    to: rules.TierRef | None,
    value: int,
    reason: str,
    now: datetime,
    retention_days: int,
) -> None:
    row = session.get(MemberTier, member_id)
    if row is None:
        row = MemberTier(member_id=member_id)
        session.add(row)
    row.tier_code = to.code if to else None
    row.achieved_at = now
    row.retain_until = now + timedelta(days=retention_days)
    change = TierChange(
        member_id=member_id,
        from_code=before.tier.code if before.tier else None,
        to_code=to.code if to else None,
        reason=reason,
        metric_value=value,
    )
    session.add(change)
    session.flush()
    _announce(session, change)


def _announce(session: Session, change: TierChange) -> None:
    payload = {
        "member_id": change.member_id,
        "from": change.from_code,
        "to": change.to_code,
        "reason": change.reason,
        "tier_change_id": change.id,
    }
    emit(session, Event(Topic.TIER_CHANGED, payload, member_id=change.member_id))


def tier_after_order(
    session: Session, before: Standing, value: int
) -> tuple[rules.TierRef | None, rules.TierRef | None]:
    """The tier a member holds once an order carried their metric to ``value`` (never
    lower than before), and the tier they are lifted to (None: no lift)."""
    target = rules.upgrade_to(load_tiers(session), before.tier, value)
    return (target or before.tier), target


def lift_after_order(
    session: Session,
    *,
    member_id: int,
    before: Standing,
    to: rules.TierRef,
    value: int,
    order_id: int,
    policy: rules.TierPolicy,
) -> None:
    """Record the lift an order earned, at once (assessment only ever lowers later)."""
    change_tier(
        session,
        member_id=member_id,
        before=before,
        to=to,
        value=value,
        reason=f"order {order_id}",
        now=clock.now(),
        retention_days=policy.retention_days,
    )


def card_tier(session: Session, member_id: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The card's ``tier`` and ``growth`` blocks."""
    tiers = load_tiers(session)
    policy = tier_policy(session)
    current = current_tier(session, member_id)
    value = metric_value(session, member_id, policy, clock.now())
    return tier_view(current), {
        "metric": policy.metric.value,
        **rules.growth(tiers, current, value),
    }


def recent_changes(session: Session, member_id: int, limit: int) -> list[TierChange]:
    return list(
        session.scalars(
            select(TierChange)
            .where(TierChange.member_id == member_id)
            .order_by(TierChange.id.desc())
            .limit(limit)
        )
    )


def move_tier(session: Session, loser_id: int, survivor_id: int) -> dict[str, Any]:
    """Merge step: the survivor keeps the higher of the two tiers."""
    tiers = load_tiers(session)
    loser, survivor = standing(session, loser_id, tiers), standing(session, survivor_id, tiers)
    loser_rank = loser.tier.rank if loser.tier else -1
    survivor_rank = survivor.tier.rank if survivor.tier else -1
    if loser_rank <= survivor_rank:
        return {}
    row = session.get(MemberTier, survivor_id) or MemberTier(member_id=survivor_id)
    session.add(row)
    row.tier_code = loser.tier.code if loser.tier else None
    row.retain_until = loser.retain_until
    row.achieved_at = clock.now()
    change = TierChange(
        member_id=survivor_id,
        from_code=survivor.tier.code if survivor.tier else None,
        to_code=row.tier_code,
        reason=f"merged from member {loser_id}",
        metric_value=0,
    )
    session.add(change)
    session.flush()
    _announce(session, change)
    return {"tier": row.tier_code}
