"""Every row lock of the orders context: an order row, taken after the member's points
account (``app.locks``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.orders.models import Order


def lock_order(
    session: Session, *, partner_id: int, channel: str, external_id: str
) -> Order | None:
    """The partner's order under its external id, locked until the transaction ends."""
    return session.scalars(
        select(Order)
        .where(
            Order.partner_id == partner_id,
            Order.channel == channel,
            Order.external_id == external_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
