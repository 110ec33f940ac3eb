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
from app.web.schemas import CleanString, StrictInt, TierSchema, about
from open_api.schemas import CHANNEL, MemberRefIn, external_id_field, member_ref

MAX_CENTS = 10**11  # a billion yuan: far above any real order, far below BIGINT


EARLIEST_PAID_AT = datetime(2000, 1, 1, tzinfo=UTC)


def paid_at_is_plausible(value: datetime) -> None:
    """From 2000 to a day ahead of now (store clocks drift; orders are not from the future)."""
    if not EARLIEST_PAID_AT <= value <= clock.now() + timedelta(days=1):
        raise ValidationError("paid_at must be between 2000-01-01 and a day from now.")


class ItemIn(Schema):
    sku = CleanString(
        required=True, validate=validate.Length(min=1, max=64), metadata=about("The item's SKU.")
    )
    name = CleanString(
        required=True, validate=validate.Length(min=1, max=128), metadata=about("The item's name.")
    )
    category = CleanString(validate=validate.Length(max=64), metadata=about("Product category."))
    brand = CleanString(validate=validate.Length(max=64), metadata=about("Product brand."))
    quantity = StrictInt(
        required=True,
        validate=validate.Range(min=1, max=1_000_000),
        metadata=about("Units bought."),
    )
    amount_cents = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=MAX_CENTS),
        metadata=about("What the line cost, in cents, after discounts."),
    )


class OrderIn(Schema):
    channel = fields.String(
        required=True,
        validate=CHANNEL,
        metadata=about("Where the order was paid, a lowercase code the partner may use: pos ..."),
    )
    external_id = external_id_field(
        "The order's id in the partner's system; unique per channel.", required=True
    )
    member = fields.Nested(
        MemberRefIn, required=True, metadata=about("Who bought: exactly one reference.")
    )
    store_code = CleanString(
        validate=validate.Length(min=1, max=32), metadata=about("The store's code, if in a store.")
    )
    paid_at = fields.AwareDateTime(
        required=True,
        validate=paid_at_is_plausible,
        metadata=about("When it was paid, ISO 8601 with offset; from 2000 to a day from now."),
    )
    amount_cents = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=MAX_CENTS),
        metadata=about("What the member paid, in cents; points are earned on it."),
    )
    items = fields.List(
        fields.Nested(ItemIn),
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata=about("The order's lines, 1 to 500."),
    )
    coupon_codes = fields.List(
        CleanString(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(max=20),
        metadata=about("Codes of coupons used on the order, up to 20."),
    )


class OrderOut(Schema):
    order_id = fields.Integer(metadata=about("The order's id in Huiyuan."))
    member_id = fields.Integer(metadata=about("The member credited."))
    points_earned = fields.Integer(metadata=about("Points the order earned."))
    tier = fields.Nested(
        TierSchema, allow_none=True, metadata=about("The member's tier after the order, or null.")
    )


class RefundIn(Schema):
    channel = fields.String(
        required=True, validate=CHANNEL, metadata=about("The channel of the refunded order.")
    )
    external_order_id = external_id_field(
        "The refunded order's external_id, as sent with it.", required=True
    )
    external_id = external_id_field(
        "The refund's id in the partner's system; a retry with it is answered once.",
        required=True,
    )
    amount_cents = StrictInt(
        required=True,
        validate=validate.Range(min=1, max=MAX_CENTS),
        metadata=about("Amount refunded, in cents; at most what is left of the order."),
    )


class RefundOut(Schema):
    refund_id = fields.Integer(metadata=about("The refund's id in Huiyuan."))
    points_reversed = fields.Integer(metadata=about("Points taken back from the balance."))
    debt_added = fields.Integer(
        metadata=about("Points that could not be taken (already spent): owed, settled later.")
    )


class RedeemIn(Schema):
    member = fields.Nested(
        MemberRefIn,
        required=True,
        metadata=about("Who spends: the card QR code (trusted partners: any one reference)."),
    )
    # Names the channel of a member.channel_member_id (required with it).
    channel = fields.String(
        validate=CHANNEL,
        metadata=about("The channel of member.channel_member_id (required with it)."),
    )
    points = StrictInt(
        required=True, validate=validate.Range(min=1, max=10**9), metadata=about("Points to spend.")
    )
    external_id = external_id_field(
        "The spend's id in the partner's system; a retry with it is answered once.", required=True
    )
    store_code = CleanString(
        validate=validate.Length(min=1, max=32), metadata=about("The store's code.")
    )

    @validates_schema
    def _channel_with_channel_id(self, data: dict[str, Any], **_: Any) -> None:
        if "channel_member_id" in data.get("member", {}) and "channel" not in data:
            raise ValidationError("channel is required with member.channel_member_id", "channel")


class RedeemOut(Schema):
    member_id = fields.Integer(metadata=about("The member who spent."))
    balance = fields.Integer(metadata=about("The member's balance after the spend."))


@partner_required
@idempotent
@endpoint(
    summary="Record a paid order; the same (channel, external_id) and body again answers 200 "
    "with the first answer, another body 409 idempotency_mismatch",
    body=OrderIn,
    response=OrderOut,
    status=201,
    errors=("401", "403", "404", "409"),
    tag="Open API: orders",
    description="Called by a store system when an order is paid. The member is named by "
    "exactly one reference; points are earned by the points rules (tier multiplier, "
    "birthday month) and the member's tier is re-assessed. Idempotent by `(channel, "
    "external_id)`: the same order again answers 200 with the first answer and changes "
    "nothing; the same external id with another body is 409 `idempotency_mismatch`. "
    "Errors: 403 `forbidden` for a channel the partner may not use, 404 `not_found` when no "
    "member matches, 409 `conflict` for an expired card QR code. Signed (see *Signing "
    "open-API requests*).",
    example={
        "channel": "pos",
        "external_id": "POS-20261201-0001",
        "member": {"card_no": "138913635593"},
        "store_code": "SH001",
        "paid_at": "2026-12-01T14:30:00+08:00",
        "amount_cents": 25800,
        "items": [
            {
                "sku": "SKU-1001",
                "name": "茉莉花茶 250g",
                "category": "tea",
                "brand": "Huiyuan",
                "quantity": 2,
                "amount_cents": 25800,
            }
        ],
    },
    response_example={
        "order_id": 1,
        "member_id": 1,
        "points_earned": 258,
        "tier": {"code": "silver", "name": "银卡", "benefits": {"points_multiplier_pct": 100}},
    },
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
    tag="Open API: orders",
    description="Called by a store system when (part of) an order is refunded. Points are "
    "taken back in proportion to the amount refunded; points the member already spent "
    "become a debt (`debt_added`) settled from later earnings. Idempotent by `(channel, "
    "external_id)`: a retry answers 200 with the first answer. Errors: 404 `not_found` "
    "when the order is unknown on that channel, 409 `conflict` when the refund exceeds "
    "what is left of the order (`details.refundable_cents`). Signed.",
    example={
        "channel": "pos",
        "external_order_id": "POS-20261201-0001",
        "external_id": "POS-R-0001",
        "amount_cents": 12900,
    },
    response_example={"refund_id": 1, "points_reversed": 129, "debt_added": 0},
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
    tag="Open API: points",
    description="Called by the till to pay with points. The member is named by the card QR "
    "code they show (`member.qr_payload`, from `GET /mp/v1/card`); only a trusted partner "
    "(server-side e-commerce) may name them otherwise (else 403 `forbidden`, reason "
    "`member_not_present`). Idempotent by `external_id`: a retry answers 200 with the "
    "balance the first spend left. Errors: 409 `insufficient_points` when the balance is "
    "short, 409 `conflict` for an expired QR code, 404 when no member matches. Signed.",
    example={
        "member": {"qr_payload": "HY1.138913635593.1796223535.09d370ab1558aad716913515"},
        "points": 100,
        "external_id": "POS-P-0001",
        "store_code": "SH001",
    },
    response_example={"member_id": 1, "balance": 163},
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
