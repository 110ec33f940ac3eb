from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates

from app.admins.models import Role
from app.points import rules, services
from app.web.auth import admin_required, current_actor
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.pagination import MAX_ID
from app.web.schemas import (
    ADJUSTMENT_EXAMPLE,
    AdminLedgerEntrySchema,
    CleanString,
    StrictInt,
    about,
)

WRITERS = (Role.ADMIN, Role.OPERATOR)
READERS = (Role.ADMIN, Role.OPERATOR, Role.ANALYST)
TAG = "Admin: points"
RULES_EXAMPLE = {
    "points_per_yuan": 1,
    "signup_bonus": 100,
    "birthday_month_multiplier_pct": 200,
    "checkin": {"base": 5, "streak_bonus": {"7": 20}},
    "expiry": {"kind": "end_of_next_year"},
    "reminder_days_before": 30,
}


# The HTTP contract's names for the schemas of app.points.rules, which validate the
# document here and on every read, and build PointsRules.
class CheckinRulesIn(rules.CheckinRulesSchema):
    pass


class ExpiryIn(rules.ExpirySchema):
    pass


class PointsRulesIn(rules.PointsRulesSchema):
    checkin = fields.Nested(CheckinRulesIn, required=True, metadata=about("Daily check-in points."))
    expiry = fields.Nested(ExpiryIn, required=True, metadata=about("When earned points expire."))


class PointsRulesOut(PointsRulesIn):
    pass


class AdjustmentIn(Schema):
    delta = StrictInt(
        required=True,
        validate=validate.Range(min=-(10**9), max=10**9),
        metadata=about("Points to add (positive) or take (negative); not zero."),
    )
    reason = CleanString(
        required=True,
        validate=validate.Length(min=2, max=200),
        metadata=about("Why, for the audit log and the ledger note (2 to 200 characters)."),
    )

    @validates("delta")
    def _not_zero(self, value: int, **_: Any) -> None:
        if value == 0:
            raise ValidationError("delta must not be zero")


@admin_required(*READERS)
@endpoint(
    summary="The points rules",
    response=PointsRulesOut,
    errors=("401", "403"),
    tag=TAG,
    description="Roles admin, operator, analyst. The one points-rules document in force.",
    response_example=RULES_EXAMPLE,
)
def get_rules() -> Any:
    return services.get_points_rules(uow=container().uow())


@admin_required(*WRITERS)
@endpoint(
    summary="Replace the points rules (audited)",
    body=PointsRulesIn,
    response=PointsRulesOut,
    errors=("401", "403"),
    tag=TAG,
    description="Roles admin and operator (audited: before and after). Replaces the whole "
    "document; it applies to points earned from now on. Every field is required.",
    example=RULES_EXAMPLE,
    response_example=RULES_EXAMPLE,
)
def put_rules(body: rules.PointsRules) -> Any:
    return services.put_points_rules(uow=container().uow(), actor=current_actor(), rules=body)


@admin_required(*WRITERS)
@endpoint(
    summary="Adjust a member's points with a reason (audited)",
    body=AdjustmentIn,
    response=AdminLedgerEntrySchema,
    status=201,
    errors=("401", "403", "404", "409"),
    tag=TAG,
    description="Roles admin and operator (audited). Adds or takes points with a reason: a "
    "ledger entry of kind `adjust` whose note is the reason (the member sees 积分调整). "
    "Taking more than the balance is 409 `insufficient_points`; unknown member 404.",
    example={"delta": 100, "reason": "Goodwill for a late delivery"},
    response_example=ADJUSTMENT_EXAMPLE,
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
