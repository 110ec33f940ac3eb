from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, ValidationError, fields, validate, validates

from app import clock
from app.members import services
from app.members.models import GENDERS
from app.readside import members as member_views
from app.web.auth import member_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.idempotency import idempotent
from app.web.schemas import CleanString, LocalDateTime, MemberSchema


class ProfilePatchIn(Schema):
    nickname = CleanString(validate=validate.Length(min=1, max=32))
    avatar_url = fields.URL(schemes={"https", "http"}, validate=validate.Length(max=512))
    gender = fields.String(validate=validate.OneOf(GENDERS))
    city = CleanString(validate=validate.Length(min=1, max=64))
    birthday = fields.Date()

    @validates("birthday")
    def _plausible_birthday(self, value: date, **_: Any) -> None:
        if not date(1900, 1, 1) <= value <= clock.today():
            raise ValidationError("The birthday must be a past date after 1900.")


class ExpiringSchema(Schema):
    points = fields.Integer()
    expires_at = LocalDateTime()


class PointsSchema(Schema):
    balance = fields.Integer()
    expiring = fields.List(fields.Nested(ExpiringSchema))


class CardOut(Schema):
    card_no = fields.String()
    qr_payload = fields.String()
    qr_expires_at = LocalDateTime()
    tier = fields.Dict(allow_none=True)
    growth = fields.Dict(allow_none=True)
    points = fields.Nested(PointsSchema)
    paid_membership = fields.Dict(allow_none=True)
    stored_value_cents = fields.Integer()


@member_required
@endpoint(summary="My profile", response=MemberSchema, errors=("401",))
def get_me() -> Any:
    return services.get_member(uow=container().uow(), member_id=g.member_id)


@member_required
@idempotent
@endpoint(
    summary="Change my profile (the birthday can be set once)",
    body=ProfilePatchIn,
    response=MemberSchema,
    errors=("401", "409"),
)
def patch_me(body: dict[str, Any]) -> Any:
    return services.update_profile(uow=container().uow(), member_id=g.member_id, changes=body)


@member_required
@endpoint(summary="My member card with a fresh till QR payload", response=CardOut, errors=("401",))
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
