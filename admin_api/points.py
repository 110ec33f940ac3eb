from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from app.points import services
from app.web.auth import admin_required, current_actor
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.pagination import MAX_ID
from app.web.schemas import AdminLedgerEntrySchema, CleanString, StrictInt

WRITERS = ("admin", "operator")
READERS = ("admin", "operator", "analyst")


class CheckinRulesIn(Schema):
    base = StrictInt(required=True, validate=validate.Range(min=0, max=100_000))
    streak_bonus = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[1-9][0-9]{0,3}$")),
        values=StrictInt(validate=validate.Range(min=0, max=100_000)),
        required=True,
    )


class ExpiryIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("end_of_next_year", "days")))
    days = StrictInt(validate=validate.Range(min=1, max=3650))

    @validates_schema
    def _days_for_days(self, data: dict[str, Any], **_: Any) -> None:
        if data["kind"] == "days" and "days" not in data:
            raise ValidationError("days is required when kind is days", "days")
        if data["kind"] != "days" and "days" in data:
            raise ValidationError("days applies only when kind is days", "days")


class PointsRulesIn(Schema):
    points_per_yuan = StrictInt(required=True, validate=validate.Range(min=0, max=1000))
    signup_bonus = StrictInt(required=True, validate=validate.Range(min=0, max=1_000_000))
    birthday_month_multiplier_pct = StrictInt(
        required=True, validate=validate.Range(min=100, max=1000)
    )
    checkin = fields.Nested(CheckinRulesIn, required=True)
    expiry = fields.Nested(ExpiryIn, required=True)
    reminder_days_before = StrictInt(required=True, validate=validate.Range(min=0, max=365))


class PointsRulesOut(PointsRulesIn):
    pass


class AdjustmentIn(Schema):
    delta = StrictInt(required=True, validate=validate.Range(min=-(10**9), max=10**9))
    reason = CleanString(required=True, validate=validate.Length(min=2, max=200))

    @validates("delta")
    def _not_zero(self, value: int, **_: Any) -> None:
        if value == 0:
            raise ValidationError("delta must not be zero")


@admin_required(*READERS)
@endpoint(summary="The points rules", response=PointsRulesOut, errors=("401", "403"))
def get_rules() -> Any:
    return services.get_points_rules(uow=container().uow())


@admin_required(*WRITERS)
@endpoint(
    summary="Replace the points rules (audited)",
    body=PointsRulesIn,
    response=PointsRulesOut,
    errors=("401", "403"),
)
def put_rules(body: dict[str, Any]) -> Any:
    return services.put_points_rules(uow=container().uow(), actor=current_actor(), rules=body)


@admin_required(*WRITERS)
@endpoint(
    summary="Adjust a member's points with a reason (audited)",
    body=AdjustmentIn,
    response=AdminLedgerEntrySchema,
    status=201,
    errors=("401", "403", "404", "409"),
)
def adjust(member_id: int, body: dict[str, Any]) -> Any:
    return services.adjust_points(
        uow=container().uow(), actor=current_actor(), member_id=member_id, **body
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/points-rules", view_func=get_rules, methods=["GET"])
    bp.add_url_rule("/points-rules", view_func=put_rules, methods=["PUT"], endpoint="put_rules")
    bp.add_url_rule(
        f"/members/<int(max={MAX_ID}):member_id>/points-adjustments",
        view_func=adjust,
        methods=["POST"],
    )
