"""Fields and schemas the three HTTP packages share."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields

from app import clock


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
    id = fields.Integer()
    card_no = fields.String()
    nickname = fields.String(allow_none=True)
    avatar_url = fields.String(allow_none=True)
    gender = fields.String()
    birthday = fields.Date(allow_none=True)
    city = fields.String(allow_none=True)
    phone_masked = fields.String(allow_none=True)
    registered_at = LocalDateTime()


class StrictInt(fields.Integer):
    """An integer given as a JSON integer: not a string, a float, or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class LedgerEntrySchema(Schema):
    id = fields.Integer()
    delta = fields.Integer()
    kind = fields.String()
    reason_code = fields.String()  # order, refund, redemption, checkin, signup, expiry, ...
    reason = fields.String()  # the member-facing text of reason_code: 订单积分, 积分调整 ...
    balance_after = fields.Integer()
    created_at = LocalDateTime()


class AdminLedgerEntrySchema(LedgerEntrySchema):
    """The entry as operators see it: with the note (an adjustment's stated reason)."""

    note = fields.String(allow_none=True)


class TierSchema(Schema):
    code = fields.String()
    name = fields.String()
    benefits = fields.Dict()
