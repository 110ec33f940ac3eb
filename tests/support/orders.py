"""Orders, refunds and till spends as a store system sends them, for the service tests:
one call each, with what a test does not vary filled in, and the card's QR code as the till
scans it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.members import rules as member_rules
from app.members.models import Member
from app.orders import services as orders
from app.uow import UnitOfWork
from tests.factories.orders import item
from tests.factories.partners import SENDER, StoreSender
from tests.support.clock import T0
from tests.support.settings import SECRET_KEY

# The place_order fixture of tests/services/conftest.py.
PlaceOrder = Callable[..., orders.OrderOutcome]


def refund(
    uow: UnitOfWork, order_external_id: str, external_id: str, amount: int, channel: str = "pos"
) -> orders.RefundOutcome:
    return orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel=channel,
        external_order_id=order_external_id,
        external_id=external_id,
        amount_cents=amount,
    )


def redeem(
    uow: UnitOfWork,
    member: Member,
    points_to_spend: int,
    external_id: str,
    sender: StoreSender = SENDER,
) -> orders.RedeemOutcome:
    return orders.redeem_at_till(
        uow=uow,
        sender=sender,
        secret=SECRET_KEY,
        member=orders.MemberRef("card_no", member.card_no),
        points_to_spend=points_to_spend,
        external_id=external_id,
    )


def redeem_by_card(
    uow: UnitOfWork, card_no: str, amount: int, external_id: str
) -> orders.RedeemOutcome:
    """A till spend by card number: ``redeem`` for a card whose member may since be merged."""
    return orders.redeem_at_till(
        uow=uow,
        sender=SENDER,
        secret=SECRET_KEY,
        member=orders.MemberRef("card_no", card_no),
        points_to_spend=amount,
        external_id=external_id,
    )


def qr_for(member: Member, now: datetime, ttl_seconds: int = 60) -> str:
    qr = member_rules.issue_card_qr(card_no=member.card_no, now=now, ttl_seconds=ttl_seconds)
    return member_rules.encode_card_qr(SECRET_KEY, qr)


def order_once(
    uow: UnitOfWork, owner: Member, *, sender: StoreSender = SENDER, **changes: Any
) -> orders.OrderOutcome:
    """record_order of one fixed till order of 123.45 yuan for ``owner``, with ``changes``."""
    request: dict[str, Any] = {
        "channel": "pos",
        "external_id": "POS-FP-1",
        "member": orders.MemberRef("card_no", owner.card_no),
        "paid_at": T0 - timedelta(minutes=30),
        "amount_cents": 12_345,
        "items": [item(12_345)],
        "store_code": "SH-001",
        "coupon_codes": None,
    } | changes
    return orders.record_order(uow=uow, secret=SECRET_KEY, sender=sender, **request)


def spend_once(
    uow: UnitOfWork, owner: Member, *, sender: StoreSender = SENDER, **changes: Any
) -> orders.RedeemOutcome:
    """redeem_at_till of 300 points by ``owner``'s card, with ``changes``."""
    request: dict[str, Any] = {
        "member": orders.MemberRef("card_no", owner.card_no),
        "points_to_spend": 300,
        "external_id": "TILL-FP-1",
        "store_code": "SH-001",
    } | changes
    return orders.redeem_at_till(uow=uow, secret=SECRET_KEY, sender=sender, **request)
