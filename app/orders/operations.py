"""Order facts other contexts read (the tier metric sources) and the merge step for orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from app.orders.models import Order, Refund
from app.points import queries as points
from app.tiers.metrics import OrderFacts


def _spend_of(member_id: Any, start: Any, end: Any) -> Select[Any]:
    return select(func.coalesce(func.sum(Order.amount_cents - Order.refunded_cents), 0)).where(
        Order.member_id == member_id, Order.paid_at >= start, Order.paid_at < end
    )


def spend_between(session: Session, member_id: int, start: datetime, end: datetime) -> int:
    """Net spend (amount less refunds) of orders paid in [start, end)."""
    return int(session.scalar(_spend_of(member_id, start, end)) or 0)


def spend_of_member(member_id: Any, start: Any, end: Any) -> Any:
    """The ``spend_cents`` metric of one member, as a subquery correlated to ``member_id``."""
    return _spend_of(member_id, start, end).scalar_subquery()


def spend_gained(order: OrderFacts, start: datetime, end: datetime) -> int:
    """A new order adds its amount to the spend of the window it was paid in."""
    return order.amount_cents if start <= order.paid_at < end else 0


def spend_by_member_between(
    session: Session, start: datetime, end: datetime, member_ids: list[int] | None = None
) -> dict[int, int]:
    query = select(Order.member_id, func.sum(Order.amount_cents - Order.refunded_cents)).where(
        Order.paid_at >= start, Order.paid_at < end
    )
    if member_ids is not None:
        query = query.where(Order.member_id.in_(member_ids))
    rows = session.execute(query.group_by(Order.member_id)).all()
    return {int(member_id): int(total or 0) for member_id, total in rows}


def refunded_points_by_member_between(
    session: Session, start: datetime, end: datetime, member_ids: list[int] | None = None
) -> dict[int, int]:
    """Points that refunds recorded in [start, end) took back (or left owed), by member."""
    query = (
        select(Order.member_id, func.sum(Refund.points_reversed))
        .join(Order, Order.id == Refund.order_id)
        .where(Refund.created_at >= start, Refund.created_at < end)
    )
    if member_ids is not None:
        query = query.where(Order.member_id.in_(member_ids))
    rows = session.execute(query.group_by(Order.member_id)).all()
    return {int(member_id): int(total or 0) for member_id, total in rows}


def points_earned_net_by_member_between(
    session: Session, start: datetime, end: datetime, member_ids: list[int] | None = None
) -> dict[int, int]:
    """The ``points_earned`` tier metric: points earned in [start, end) less what refunds
    took back, as refunded amounts do not count in spend either."""
    earned = points.earned_by_member_between(session, start, end, member_ids)
    refunded = refunded_points_by_member_between(session, start, end, member_ids)
    return {m: max(0, total - refunded.get(m, 0)) for m, total in earned.items()}


def move_orders(session: Session, loser_id: int, survivor_id: int) -> dict[str, Any]:
    result: Any = session.execute(
        update(Order)
        .where(Order.member_id == loser_id)
        .values(member_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    return {"orders": int(result.rowcount or 0)}
