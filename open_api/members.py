from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from app.readside import members as member_views
from app.web.auth import partner_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.schemas import MemberSchema


class LookupQuery(Schema):
    card_no = fields.String(validate=validate.Length(min=1, max=32))
    phone = fields.String(validate=validate.Length(min=1, max=24))
    qr_payload = fields.String(validate=validate.Length(min=1, max=128))


class LookupOut(Schema):
    member = fields.Nested(MemberSchema)
    tier = fields.Dict(allow_none=True)
    points_balance = fields.Integer()
    stored_value_cents = fields.Integer()


@partner_required
@endpoint(
    summary="Look a member up at the till by card number, phone or card QR payload",
    query=LookupQuery,
    response=LookupOut,
    errors=("401", "404", "409"),
)
def lookup(query: dict[str, Any]) -> Any:
    deps = container()
    return member_views.look_up_member(uow=deps.uow(), secret=deps.config.secret_keys, **query)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/members/lookup", view_func=lookup, methods=["GET"])
