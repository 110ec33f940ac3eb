"""Bodies of the open API's money paths as a store system sends them, and the member's
points as the database has them after."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.points.models import PointsAccount, PointsEntry
from tests.support.http import bearer

ORDERS = "/open/v1/orders"
REFUNDS = "/open/v1/refunds"
REDEEM = "/open/v1/points/redeem"


def item(amount_cents: int, **changes: Any) -> dict[str, Any]:
    return {
        "sku": "SKU-LATTE",
        "name": "拿铁",
        "category": "drinks",
        "brand": "House",
        "quantity": 1,
        "amount_cents": amount_cents,
    } | changes


def order_body(
    who: dict[str, Any], external_id: str = "pos-1", amount_cents: int = 12_345, **changes: Any
) -> dict[str, Any]:
    return {
        "channel": "pos",
        "external_id": external_id,
        "member": who,
        "store_code": "SH-001",
        "paid_at": "2026-05-04T09:30:00+08:00",
        "amount_cents": amount_cents,
        "items": [item(amount_cents)],
    } | changes


def refund_body(external_order_id: str, external_id: str, amount_cents: int) -> dict[str, Any]:
    return {
        "channel": "pos",
        "external_order_id": external_order_id,
        "external_id": external_id,
        "amount_cents": amount_cents,
    }


def redeem_body(who: dict[str, Any], points: int, external_id: str) -> dict[str, Any]:
    return {"member": who, "points": points, "external_id": external_id, "store_code": "SH-001"}


def balance(session: Session, member_id: int) -> int:
    session.expire_all()
    account = session.get(PointsAccount, member_id)
    return 0 if account is None else account.balance


def entries(session: Session, member_id: int) -> list[tuple[int, str, int]]:
    session.expire_all()
    rows = session.execute(
        select(PointsEntry.delta, PointsEntry.kind, PointsEntry.balance_after)
        .where(PointsEntry.member_id == member_id)
        .order_by(PointsEntry.id)
    ).all()
    return [(int(delta), str(kind), int(after)) for delta, kind, after in rows]


def card_qr(client: FlaskClient, member: dict[str, Any]) -> str:
    """A fresh card QR payload, as the member shows it at the till."""
    card = client.get("/mp/v1/card", headers=bearer(member["token"]))
    return str(card.get_json()["qr_payload"])
