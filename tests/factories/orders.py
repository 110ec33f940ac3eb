"""Order lines as store systems send them."""

from __future__ import annotations

from typing import Any


def item(amount_cents: int, sku: str = "SKU-1") -> dict[str, Any]:
    return {
        "sku": sku,
        "name": "茶叶礼盒",
        "category": "tea",
        "brand": "huiyuan",
        "quantity": 1,
        "amount_cents": amount_cents,
    }
