"""Request schemas the open-API endpoints share."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.members.models import ReferenceKind
from app.orders.intake import MemberRef
from app.partners.rules import CHANNEL_PATTERN
from app.web.schemas import CleanString, about

CHANNEL = validate.Regexp(CHANNEL_PATTERN, error="a lowercase channel code: pos, tmall")
EXTERNAL_ID = validate.Length(min=1, max=64)
REFERENCE_KINDS = tuple(kind.value for kind in ReferenceKind)


class MemberRefIn(Schema):
    """Exactly one way to name the member."""

    OPENAPI: ClassVar[dict[str, int]] = {"minProperties": 1, "maxProperties": 1}

    card_no = fields.String(
        validate=validate.Length(min=1, max=32), metadata=about("The membership card number.")
    )
    phone = fields.String(
        validate=validate.Regexp(r"^\+?[0-9]{5,20}$"),
        metadata=about("The member's phone number, digits with an optional leading +."),
    )
    unionid = fields.String(
        validate=validate.Length(min=1, max=64), metadata=about("The member's WeChat unionid.")
    )
    qr_payload = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata=about("The card QR code the member shows (GET /mp/v1/card); short-lived."),
    )
    channel_member_id = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata=about("The member's id in the channel's own system (with `channel`)."),
    )

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        if len(data) != 1:
            raise ValidationError(f"Give exactly one of {', '.join(REFERENCE_KINDS)}.")


def member_ref(data: dict[str, Any]) -> MemberRef:
    ((kind, value),) = data.items()
    return MemberRef(kind=ReferenceKind(kind), value=value)


def external_id_field(description: str, **kwargs: Any) -> fields.String:
    return CleanString(validate=EXTERNAL_ID, metadata=about(description), **kwargs)
