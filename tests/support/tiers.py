"""What the tier tests share: the operator who changes the ladder, and a refund named after
its order and amount."""

from __future__ import annotations

from app.admins.operations import Actor
from app.orders import services as orders
from app.uow import UnitOfWork
from tests.factories.partners import SENDER

OPERATOR = Actor(type="admin", name="ops-wang", id=3)


def refund(uow: UnitOfWork, order_external_id: str, amount: int) -> orders.RefundOutcome:
    return orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id=order_external_id,
        external_id=f"R-{order_external_id}-{amount}",
        amount_cents=amount,
    )
