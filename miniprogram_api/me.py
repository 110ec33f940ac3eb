from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, ValidationError, fields, validate, validates

from app import clock
from app.members import services
from app.members.models import Gender
from app.readside import members as member_views
from app.web.auth import member_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.idempotency import idempotent
from app.web.schemas import MEMBER_EXAMPLE, CleanString, LocalDateTime, MemberSchema, about

TAG = "Mini-program: profile and card"


class ProfilePatchIn(Schema):
    nickname = CleanString(
        validate=validate.Length(min=1, max=32), metadata=about("Display name, 1 to 32 characters.")
    )
    avatar_url = fields.URL(
        schemes={"https", "http"},
        validate=validate.Length(max=512),
        metadata=about("Avatar image URL (http or https)."),
    )
    gender = fields.String(
        validate=validate.OneOf([gender.value for gender in Gender]),
        metadata=about("unknown, male or female."),
    )
    city = CleanString(
        validate=validate.Length(min=1, max=64), metadata=about("City, 1 to 64 characters.")
    )
    birthday = fields.Date(
        metadata=about("YYYY-MM-DD, after 1900 and not in the future; can be set once.")
    )

    @validates("birthday")
    def _plausible_birthday(self, value: date, **_: Any) -> None:
        if not date(1900, 1, 1) <= value <= clock.today():
            raise ValidationError("The birthday must be a past date after 1900.")


class ExpiringSchema(Schema):
    points = fields.Integer(metadata=about("Points that expire at expires_at."))
    expires_at = LocalDateTime(metadata=about("When those points expire."))


class PointsSchema(Schema):
    balance = fields.Integer(metadata=about("Points the member can spend now."))
    expiring = fields.List(
        fields.Nested(ExpiringSchema), metadata=about("Points by expiry date, soonest first.")
    )


class CardOut(Schema):
    card_no = fields.String(metadata=about("The membership card number."))
    qr_payload = fields.String(
        metadata=about("What the card's QR code encodes, for the till to scan; short-lived.")
    )
    qr_expires_at = LocalDateTime(metadata=about("When qr_payload stops being accepted."))
    tier = fields.Dict(
        allow_none=True,
        metadata=about("The member's tier {code, name, benefits}; null without a tier ladder."),
    )
    growth = fields.Dict(
        allow_none=True,
        metadata=about(
            "Progress to the next tier {metric, value, next_tier {code, name} | null, needed}; "
            "null without a tier ladder."
        ),
    )
    points = fields.Nested(PointsSchema, metadata=about("Balance and upcoming expiries."))
    paid_membership = fields.Dict(
        allow_none=True, metadata=about("The paid membership {plan_code, name, valid_to}, or null.")
    )
    stored_value_cents = fields.Integer(metadata=about("Stored-value balance in cents."))


@member_required
@endpoint(
    summary="My profile",
    response=MemberSchema,
    errors=("401",),
    tag=TAG,
    description="The signed-in member's profile, as the mini-program's profile page shows "
    "it. The phone number is masked.",
    response_example=MEMBER_EXAMPLE,
)
def get_me() -> Any:
    return services.get_member(uow=container().uow(), member_id=g.member_id)


@member_required
@idempotent
@endpoint(
    summary="Change my profile (the birthday can be set once)",
    body=ProfilePatchIn,
    response=MemberSchema,
    errors=("401", "409"),
    tag=TAG,
    description="Changes the fields sent, leaves the others. The birthday can be set once "
    "(it drives birthday-month points): changing a set birthday is 409 `conflict`; sending "
    "the same birthday again is fine. Accepts `Idempotency-Key`.",
    example={"nickname": "小林", "city": "上海", "gender": "female", "birthday": "1992-05-20"},
    response_example=MEMBER_EXAMPLE,
)
def patch_me(body: dict[str, Any]) -> Any:
    return services.update_profile(uow=container().uow(), member_id=g.member_id, changes=body)


@member_required
@endpoint(
    summary="My member card with a fresh till QR payload",
    response=CardOut,
    errors=("401",),
    tag=TAG,
    description="The member card page: card number, a freshly signed QR payload for the "
    "till (valid about a minute: refresh the card to show a new one), tier and progress to "
    "the next, points balance and upcoming expiries. Read only.",
    response_example={
        "card_no": "138913635593",
        "qr_payload": "HY1.138913635593.1796223535.09d370ab1558aad716913515",
        "qr_expires_at": "2026-12-02T22:58:55+08:00",
        "tier": {"code": "silver", "name": "银卡", "benefits": {"points_multiplier_pct": 100}},
        "growth": {
            "metric": "spend_cents",
            "value": 25800,
            "next_tier": {"code": "gold", "name": "金卡"},
            "needed": 474200,
        },
        "points": {
            "balance": 263,
            "expiring": [{"points": 263, "expires_at": "2028-01-01T00:00:00+08:00"}],
        },
        "paid_membership": None,
        "stored_value_cents": 0,
    },
)
def get_card() -> Any:
    deps = container()
    return member_views.get_card(
        uow=deps.uow(),
        member_id=g.member_id,
        secret=deps.config.secret_key,
        qr_ttl_seconds=deps.config.card_qr_ttl_seconds,
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/me", view_func=get_me, methods=["GET"])
    bp.add_url_rule("/me", view_func=patch_me, methods=["PATCH"], endpoint="patch_me")
    bp.add_url_rule("/card", view_func=get_card, methods=["GET"])
