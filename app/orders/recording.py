"""The steps of recording an order, in the order ``services.record_order`` takes them:
the member's tier before it, the points it earns, the order written once with the tier it
lifts its member to, and the event that announces it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import clock
from app.external_ids.replay import ExternalIdTaken
from app.orders.intake import Intake
from app.orders.models import Order, OrderItem
from app.outbox.events import Event, Topic
from app.points import operations as points
from app.points import rules as points_rules
from app.tiers import operations as tiers
from app.tiers import rules as tier_rules
from app.tiers.metrics import OrderFacts
from app.writes import insert_now, insert_rows


def standing(session: Session, found: Intake, ladder: list[tier_rules.TierRef]) -> tiers.Standing:
    """The member's tier before the order: from the intake's row on the common path."""
    if found.held:
        return tiers.standing_of(found.tier_row, ladder)
    return tiers.standing(session, found.member.id, ladder)


def points_for(session: Session, found: Intake, order: Order, tier: Any) -> int:
    """What the order earns: the rules' rate, the tier's multiplier, the birthday month's."""
    rules = points.points_rules(session)
    birthday = found.member.birthday
    in_birthday_month = birthday is not None and (
        birthday.month == clock.to_local(order.paid_at).month
    )
    return points_rules.points_for_amount(
        order.amount_cents,
        points_per_yuan=rules.points_per_yuan,
        tier_pct=tiers.multiplier_of(tier),
        birthday_pct=rules.birthday_month_multiplier_pct if in_birthday_month else 100,
    )


def write(
    session: Session,
    order: Order,
    items: list[dict[str, Any]],
    *,
    found: Intake,
    before: tiers.Standing,
    policy: tier_rules.TierPolicy,
    additive: bool,
) -> tuple[int, tier_rules.TierRef | None]:
    """Write the order, its lines and its points once; answers the member's metric after it
    and the tier it lifts them to (None: no lift). With an ``additive`` metric the tier is
    known before the order is in; otherwise the metric is read once it is."""
    if not tiers.load_tiers(session):
        _insert(session, order, items)
        return 0, None
    if additive:
        base = found.metric if found.metric is not None else _metric(session, order, policy)
        facts = OrderFacts(order.amount_cents, order.paid_at, order.points_earned)
        value = tiers.value_after_order(policy, base, facts)
        lifted = _settle_tier(session, order, before, value)
        _insert(session, order, items)
        return value, lifted
    _insert(session, order, items)
    value = _metric(session, order, policy)
    return value, _settle_tier(session, order, before, value)


def _metric(session: Session, order: Order, policy: tier_rules.TierPolicy) -> int:
    return tiers.metric_value(session, order.member_id, policy, clock.now())


def _settle_tier(
    session: Session, order: Order, before: tiers.Standing, value: int
) -> tier_rules.TierRef | None:
    held, lifted = tiers.tier_after_order(session, before, value)
    order.tier_after = tiers.tier_view(held)
    return lifted


def _insert(session: Session, order: Order, items: list[dict[str, Any]]) -> None:
    """The order, its lines and its points. The unique (partner, channel, external_id)
    decides a duplicate the intake could not see (a twin naming its member otherwise, or
    an order recorded before requests were)."""
    try:
        insert_now(session, order)
    except IntegrityError:
        raise ExternalIdTaken from None
    insert_rows(session, OrderItem, ({"order_id": order.id, **item} for item in items))
    if order.points_earned > 0:
        points.earn(
            session,
            member_id=order.member_id,
            points=order.points_earned,
            order_id=order.id,
            reason_code=points_rules.ReasonCode.ORDER,
            note=f"order {order.channel}/{order.external_id}",
            idempotency_key=f"order:{order.id}",
        )


def recorded(order: Order) -> Event:
    """The event that puts the order on the member's timeline."""
    payload = {
        "order_id": order.id,
        "member_id": order.member_id,
        "channel": order.channel,
        "external_id": order.external_id,
        "store_code": order.store_code,
        "amount_cents": order.amount_cents,
        "points_earned": order.points_earned,
        "paid_at": order.paid_at.isoformat(),
    }
    return Event(Topic.ORDER_RECORDED, payload, member_id=order.member_id)
