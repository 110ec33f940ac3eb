"""Fields and schemas the three HTTP packages share."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields

from app import clock
from app.settings.documents import StrictInt, about

# StrictInt and about are defined with the settings documents, which use them too.
__all__ = [
    "ADJUSTMENT_EXAMPLE",
    "MEMBER_EXAMPLE",
    "AdminLedgerEntrySchema",
    "CleanString",
    "LedgerEntrySchema",
    "LocalDateTime",
    "MemberSchema",
    "StrictInt",
    "TierSchema",
    "about",
]


class LocalDateTime(fields.DateTime):
    """ISO 8601 with the brand's offset (+08:00), what the mini-program shows."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, datetime):
            value = clock.to_local(value)
        return super()._serialize(value, attr, obj, **kwargs)


class CleanString(fields.String):
    """Text from a person: trimmed, no control characters."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is None:
            return None
        text = text.strip()
        if any(unicodedata.category(ch) == "Cc" for ch in text):
            raise ValidationError("Control characters are not allowed.")
        return text


class MemberSchema(Schema):
    id = fields.Integer(metadata=about("The member's id, stable across merges of others into it."))
    card_no = fields.String(metadata=about("The membership card number shown to the member."))
    nickname = fields.String(allow_none=True, metadata=about("Display name; null until set."))
    avatar_url = fields.String(allow_none=True, metadata=about("Avatar image URL; null until set."))
    gender = fields.String(metadata=about("unknown, male or female."))
    birthday = fields.Date(
        allow_none=True, metadata=about("Birthday (YYYY-MM-DD); null until set, set once.")
    )
    city = fields.String(allow_none=True, metadata=about("City; null until set."))
    phone_masked = fields.String(
        allow_none=True,
        metadata=about("The bound phone number, masked (138****8000); null if none."),
    )
    registered_at = LocalDateTime(metadata=about("When the member joined."))


# A member as MemberSchema answers it, for the OpenAPI document's examples.
MEMBER_EXAMPLE = {
    "id": 1,
    "card_no": "138913635593",
    "nickname": "小林",
    "avatar_url": "https://thirdwx.qlogo.cn/mmopen/avatar.png",
    "gender": "female",
    "birthday": "1992-05-20",
    "city": "上海",
    "phone_masked": "138****8000",
    "registered_at": "2026-12-02T22:57:55+08:00",
}


class LedgerEntrySchema(Schema):
    id = fields.Integer(metadata=about("The entry's id; entries are never changed or removed."))
    delta = fields.Integer(metadata=about("Points added (positive) or taken (negative)."))
    kind = fields.String(metadata=about("earn, spend, expire, adjust or reverse."))
    reason_code = fields.String(
        metadata=about(
            "Why, as a stable code: order, refund, redemption, checkin, signup, expiry, "
            "adjustment, merge, debt_settlement."
        )
    )
    reason = fields.String(metadata=about("The member-facing text of reason_code: 订单积分 ..."))
    balance_after = fields.Integer(metadata=about("The member's balance after this entry."))
    created_at = LocalDateTime(metadata=about("When the entry was written."))


class AdminLedgerEntrySchema(LedgerEntrySchema):
    """The entry as operators see it: with the note (an adjustment's stated reason)."""

    note = fields.String(
        allow_none=True,
        metadata=about("Operator-facing note: an adjustment's stated reason, the order's id ..."),
    )


# An operator's adjustment as AdminLedgerEntrySchema answers it, for the examples.
ADJUSTMENT_EXAMPLE = {
    "id": 5,
    "delta": 100,
    "kind": "adjust",
    "reason_code": "adjustment",
    "reason": "积分调整",
    "balance_after": 224,
    "created_at": "2026-12-02T22:57:55+08:00",
    "note": "Goodwill for a late delivery",
}


class TierSchema(Schema):
    code = fields.String(metadata=about("The tier's code: silver, gold ..."))
    name = fields.String(metadata=about("The tier's display name: 金卡 ..."))
    benefits = fields.Dict(
        metadata=about(
            "The tier's benefits: points_multiplier_pct, discount_pct, free_shipping ..."
        )
    )
