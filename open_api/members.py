from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from app.readside import members as member_views
from app.web.auth import partner_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.schemas import MEMBER_EXAMPLE, MemberSchema, about


class LookupQuery(Schema):
    card_no = fields.String(
        validate=validate.Length(min=1, max=32), metadata=about("The membership card number.")
    )
    phone = fields.String(
        validate=validate.Length(min=1, max=24), metadata=about("The member's phone number.")
    )
    qr_payload = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata=about("The card QR code the member shows; expired: 409 conflict."),
    )


class LookupOut(Schema):
    member = fields.Nested(MemberSchema, metadata=about("The member found."))
    tier = fields.Dict(
        allow_none=True, metadata=about("The member's tier {code, name, benefits}, or null.")
    )
    points_balance = fields.Integer(metadata=about("Points the member can spend now."))
    stored_value_cents = fields.Integer(metadata=about("Stored-value balance in cents."))


@partner_required
@endpoint(
    summary="Look a member up at the till by card number, phone or card QR payload",
    query=LookupQuery,
    response=LookupOut,
    errors=("401", "404", "409"),
    tag="Open API: members",
    description="Called by the till when the cashier scans the member's card QR code or types "
    "a card or phone number: exactly one of `card_no`, `phone`, `qr_payload` (none or "
    "several: 422). No member matches: 404 `not_found`; an expired QR payload: 409 "
    "`conflict` (ask the member to refresh the card); a tampered one: 422. Read only. "
    "Signed (see *Signing open-API requests*): the signed path includes the query string.",
    response_example={
        "member": MEMBER_EXAMPLE,
        "tier": {"code": "silver", "name": "银卡", "benefits": {"points_multiplier_pct": 100}},
        "points_balance": 263,
        "stored_value_cents": 0,
    },
)
def lookup(query: dict[str, Any]) -> Any:
    deps = container()
    return member_views.look_up_member(uow=deps.uow(), secret=deps.config.secret_keys, **query)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/members/lookup", view_func=lookup, methods=["GET"])
