"""What the open-API floor accepts: the two request bodies, checked as the app's schemas
check them (types, lengths, ranges, no unknown field) and parsed into the documents
their fingerprints are taken of. Members are named by ``card_no`` only, as the bench does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.floors import protocol
from bench.floors.kit import Refused

CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
MAX_CENTS = 10**11
EARLIEST_PAID_AT = datetime(2000, 1, 1, tzinfo=UTC)
ORDER_FIELDS = {"channel", "external_id", "member", "store_code", "paid_at", "amount_cents"}
ORDER_FIELDS |= {"items", "coupon_codes"}
ITEM_FIELDS = {"sku", "name", "category", "brand", "quantity", "amount_cents"}
REDEEM_FIELDS = {"member", "channel", "points", "external_id", "store_code"}


def invalid(field: str, message: str = "Not a valid value.") -> Refused:
    return Refused(422, "validation_error", "The request is not valid.", fields={field: [message]})


def _text(data: dict[str, Any], name: str, low: int, high: int, *, required: bool) -> str | None:
    """A trimmed string of ``low`` to ``high`` characters; None when optional and absent."""
    value = data.get(name)
    if value is None and not required and name not in data:
        return None
    if not isinstance(value, str) or not low <= len(value.strip()) <= high:
        raise invalid(name)
    return value.strip()


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(name)
    return value


def _card_no(data: dict[str, Any]) -> str:
    member = data.get("member")
    if not isinstance(member, dict) or len(member) != 1:
        raise invalid("member", "Give exactly one reference.")
    card = member.get("card_no")
    if not isinstance(card, str) or not 1 <= len(card) <= 32:
        raise invalid("member", "The floor names members by card_no only.")
    return card


def _refuse_unknown(data: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise invalid(extra[0], "Unknown field.")


def parse_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise invalid("items")
    _refuse_unknown(item, ITEM_FIELDS)
    parsed: dict[str, Any] = {
        "sku": _text(item, "sku", 1, 64, required=True),
        "name": _text(item, "name", 1, 128, required=True),
    }
    for name in ("category", "brand"):
        if name in item:
            parsed[name] = _text(item, name, 0, 64, required=True)
    parsed["quantity"] = _int(item, "quantity", 1, 1_000_000)
    parsed["amount_cents"] = _int(item, "amount_cents", 0, MAX_CENTS)
    return parsed


def parse_order(body: dict[str, Any]) -> dict[str, Any]:
    """``POST /open/v1/orders``: every field as parsed (the fingerprint covers them all)."""
    _refuse_unknown(body, ORDER_FIELDS)
    channel = body.get("channel")
    if not isinstance(channel, str) or not CHANNEL.fullmatch(channel):
        raise invalid("channel")
    try:
        paid_at = protocol.parse_instant(body.get("paid_at"))
    except ValueError:
        raise invalid("paid_at") from None
    if not EARLIEST_PAID_AT <= paid_at <= datetime.now(UTC) + timedelta(days=1):
        raise invalid("paid_at", "paid_at must be between 2000-01-01 and a day from now.")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 500:
        raise invalid("items")
    coupons = body.get("coupon_codes")
    if coupons is not None and not (
        isinstance(coupons, list)
        and len(coupons) <= 20
        and all(isinstance(c, str) and 1 <= len(c.strip()) <= 64 for c in coupons)
    ):
        raise invalid("coupon_codes")
    return {
        "channel": channel,
        "external_id": _text(body, "external_id", 1, 64, required=True),
        "member": {"card_no": _card_no(body)},
        "paid_at": paid_at,
        "amount_cents": _int(body, "amount_cents", 0, MAX_CENTS),
        "items": [parse_item(item) for item in items],
        "store_code": _text(body, "store_code", 1, 32, required=False),
        "coupon_codes": [c.strip() for c in coupons] if coupons is not None else None,
    }


def parse_redeem(body: dict[str, Any]) -> dict[str, Any]:
    """``POST /open/v1/points/redeem``: every field as parsed; ``channel`` is "" when absent,
    as the app passes it on."""
    _refuse_unknown(body, REDEEM_FIELDS)
    channel = _text(body, "channel", 1, 16, required=False) or ""
    if channel and not CHANNEL.fullmatch(channel):
        raise invalid("channel")
    return {
        "member": {"card_no": _card_no(body)},
        "channel": channel,
        "points": _int(body, "points", 1, 10**9),
        "external_id": _text(body, "external_id", 1, 64, required=True),
        "store_code": _text(body, "store_code", 1, 32, required=False),
    }
