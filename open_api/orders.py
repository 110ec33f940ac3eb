from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app import clock
from app.orders import services
from app.web.auth import partner_required
from app.web.deps import container
from app.web.endpoint import Answer, endpoint
from app.web.idempotency import idempotent
from app.web.schemas import CleanString, StrictInt, TierSchema
from open_api.schemas import CHANNEL, MemberRefIn, external_id_field, member_ref

MAX_CENTS = 10**11  # a billion yuan: far above any real order, far below BIGINT


EARLIEST_PAID_AT = datetime(2000, 1, 1, tzinfo=UTC)


def paid_at_is_plausible(value: datetime) -> None:
    """From 2000 to a day ahead of now (store clocks drift; orders are not from the future)."""
    if not EARLIEST_PAID_AT <= value <= clock.now() + timedelta(days=1):
        raise ValidationError("paid_at must be between 2000-01-01 and a day from now.")


class ItemIn(Schema):
    sku = CleanString(required=True, validate=validate.Length(min=1, max=64))
    name = CleanString(required=True, validate=validate.Length(min=1, max=128))
    category = CleanString(validate=validate.Length(max=64))
    brand = CleanString(validate=validate.Length(max=64))
    quantity = StrictInt(required=True, validate=validate.Range(min=1, max=1_000_000))
    amount_cents = StrictInt(required=True, validate=validate.Range(min=0, max=MAX_CENTS))


class OrderIn(Schema):
    channel = fields.String(required=True, validate=CHANNEL)
    external_id = external_id_field(required=True)
    member = fields.Nested(MemberRefIn, required=True)
    store_code = CleanString(validate=validate.Length(min=1, max=32))
    paid_at = fields.AwareDateTime(required=True, validate=paid_at_is_plausible)
    amount_cents = StrictInt(required=True, validate=validate.Range(min=0, max=MAX_CENTS))
    items = fields.List(
        fields.Nested(ItemIn), required=True, validate=validate.Length(min=1, max=500)
    )
    coupon_codes = fields.List(
        CleanString(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=20)
    )


class OrderOut(Schema):
    order_id = fields.Integer()
    member_id = fields.Integer()
    points_earned = fields.Integer()
    tier = fields.Nested(TierSchema, allow_none=True)


class RefundIn(Schema):
    channel = fields.String(required=True, validate=CHANNEL)
    external_order_id = external_id_field(required=True)
    external_id = external_id_field(required=True)
    amount_cents = StrictInt(required=True, validate=validate.Range(min=1, max=MAX_CENTS))


class RefundOut(Schema):
    refund_id = fields.Integer()
    points_reversed = fields.Integer()
    debt_added = fields.Integer()


class RedeemIn(Schema):
    member = fields.Nested(MemberRefIn, required=True)
    # Names the channel of a member.channel_member_id (required with it).
    channel = fields.String(validate=CHANNEL)
    points = StrictInt(required=True, validate=validate.Range(min=1, max=10**9))
    external_id = external_id_field(required=True)
    store_code = CleanString(validate=validate.Length(min=1, max=32))

    @validates_schema
    def _channel_with_channel_id(self, data: dict[str, Any], **_: Any) -> None:
        if "channel_member_id" in data.get("member", {}) and "channel" not in data:
            raise ValidationError("channel is required with member.channel_member_id", "channel")


class RedeemOut(Schema):
    member_id = fields.Integer()
    balance = fields.Integer()


@partner_required
@idempotent
@endpoint(
    summary="Record a paid order; the same (channel, external_id) and body again answers 200 "
    "with the first answer, another body 409 idempotency_mismatch",
    body=OrderIn,
    response=OrderOut,
    status=201,
    errors=("401", "403", "404", "409"),
)
def post_order(body: dict[str, Any]) -> Any:
    deps = container()
    outcome = services.record_order(
        uow=deps.uow(),
        secret=deps.config.secret_keys,
        sender=g.partner,
        channel=body["channel"],
        external_id=body["external_id"],
        member=member_ref(body["member"]),
        paid_at=body["paid_at"],
        amount_cents=body["amount_cents"],
        items=body["items"],
        store_code=body.get("store_code"),
        coupon_codes=body.get("coupon_codes"),
    )
    return Answer(outcome, 200 if outcome.replayed else 201)


@partner_required
@idempotent
@endpoint(
    summary="Record a refund of one of the partner's orders; points are taken back in "
    "proportion (a shortfall is a debt)",
    body=RefundIn,
    response=RefundOut,
    status=201,
    errors=("401", "403", "404", "409"),
)
def post_refund(body: dict[str, Any]) -> Any:
    outcome = services.record_refund(uow=container().uow(), sender=g.partner, **body)
    return Answer(outcome, 200 if outcome.replayed else 201)


@partner_required
@idempotent
@endpoint(
    summary="Spend points at the till by the member's card QR code (trusted partners: any "
    "reference), idempotent by external_id",
    body=RedeemIn,
    response=RedeemOut,
    status=201,
    errors=("401", "403", "404", "409"),
)
def redeem_points(body: dict[str, Any]) -> Any:
    deps = container()
    outcome = services.redeem_at_till(
        uow=deps.uow(),
        secret=deps.config.secret_keys,
        sender=g.partner,
        channel=body.get("channel", ""),
        member=member_ref(body["member"]),
        points_to_spend=body["points"],
        external_id=body["external_id"],
        store_code=body.get("store_code"),
    )
    return Answer(outcome, 200 if outcome.replayed else 201)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/orders", view_func=post_order, methods=["POST"])
    bp.add_url_rule("/refunds", view_func=post_refund, methods=["POST"])
    bp.add_url_rule("/points/redeem", view_func=redeem_points, methods=["POST"])
