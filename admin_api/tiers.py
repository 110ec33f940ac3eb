from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.tiers import services
from app.web.auth import admin_required, current_actor
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.schemas import CleanString, StrictInt

WRITERS = ("admin", "operator")
READERS = ("admin", "operator", "analyst")
CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="a lowercase code: gold, diamond")


class BenefitsIn(Schema):
    points_multiplier_pct = StrictInt(validate=validate.Range(min=0, max=1000))
    discount_pct = StrictInt(validate=validate.Range(min=0, max=100))
    free_shipping = fields.Boolean(truthy={True}, falsy={False})
    priority_service = fields.Boolean(truthy={True}, falsy={False})
    birthday_coupon_template_id = StrictInt(allow_none=True)
    upgrade_gift_points = StrictInt(validate=validate.Range(min=0, max=10**7))


class TierIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = CleanString(required=True, validate=validate.Length(min=1, max=32))
    rank = StrictInt(required=True, validate=validate.Range(min=0, max=1000))
    threshold = StrictInt(required=True, validate=validate.Range(min=0, max=10**13))
    benefits = fields.Nested(BenefitsIn, load_default=dict)


class TierPatch(Schema):
    name = CleanString(validate=validate.Length(min=1, max=32))
    rank = StrictInt(validate=validate.Range(min=0, max=1000))
    threshold = StrictInt(validate=validate.Range(min=0, max=10**13))
    benefits = fields.Nested(BenefitsIn)


class TierOut(Schema):
    code = fields.String()
    name = fields.String()
    rank = fields.Integer()
    threshold = fields.Integer()
    benefits = fields.Dict()


class TierList(Schema):
    items = fields.List(fields.Nested(TierOut))


class WindowIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("rolling_days", "calendar_year")))
    days = StrictInt(validate=validate.Range(min=1, max=3660))

    @validates_schema
    def _days(self, data: dict[str, Any], **_: Any) -> None:
        if (data["kind"] == "rolling_days") != ("days" in data):
            raise ValidationError("days goes with rolling_days, and only with it", "days")


class PolicyIn(Schema):
    metric = fields.String(required=True, validate=validate.OneOf(("spend_cents", "points_earned")))
    window = fields.Nested(WindowIn, required=True)
    retention_days = StrictInt(required=True, validate=validate.Range(min=0, max=3660))


class PolicyOut(PolicyIn):
    pass


class SimulateIn(Schema):
    thresholds = fields.Dict(
        keys=fields.String(validate=CODE),
        values=StrictInt(validate=validate.Range(min=0, max=10**13)),
        required=True,
    )


class SimulateOut(Schema):
    distribution = fields.Dict(keys=fields.String(), values=fields.Integer())


@admin_required(*READERS)
@endpoint(summary="The tier ladder", response=TierList, errors=("401", "403"))
def list_tiers() -> Any:
    return {"items": services.list_tiers(uow=container().uow())}


@admin_required(*WRITERS)
@endpoint(
    summary="Add a tier (audited)",
    body=TierIn,
    response=TierOut,
    status=201,
    errors=("401", "403", "409"),
)
def create_tier(body: dict[str, Any]) -> Any:
    return services.create_tier(uow=container().uow(), actor=current_actor(), fields=body)


@admin_required(*WRITERS)
@endpoint(
    summary="Change a tier (audited)",
    body=TierPatch,
    response=TierOut,
    errors=("401", "403", "404", "409"),
)
def update_tier(code: str, body: dict[str, Any]) -> Any:
    return services.update_tier(
        uow=container().uow(), actor=current_actor(), code=code, changes=body
    )


@admin_required(*READERS)
@endpoint(summary="The tier policy", response=PolicyOut, errors=("401", "403"))
def get_policy() -> Any:
    return services.get_policy(uow=container().uow())


@admin_required(*WRITERS)
@endpoint(
    summary="Replace the tier policy (audited)",
    body=PolicyIn,
    response=PolicyOut,
    errors=("401", "403"),
)
def put_policy(body: dict[str, Any]) -> Any:
    return services.put_policy(uow=container().uow(), actor=current_actor(), policy=body)


@admin_required(*READERS)
@endpoint(
    summary="How many members each tier would hold today with these thresholds (changes "
    "nothing). One runs at a time: another call meanwhile is 409 already_running.",
    body=SimulateIn,
    response=SimulateOut,
    errors=("401", "403", "409:already_running"),
)
def simulate(body: dict[str, Any]) -> Any:
    deps = container()
    return {
        "distribution": services.simulate_distribution_once(
            uow=deps.uow(),
            redis=deps.redis,
            thresholds=body["thresholds"],
            lock_seconds=deps.config.tier_simulation_lock_seconds,
        )
    }


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/tiers", view_func=list_tiers, methods=["GET"])
    bp.add_url_rule("/tiers", view_func=create_tier, methods=["POST"], endpoint="create_tier")
    bp.add_url_rule("/tiers/<code>", view_func=update_tier, methods=["PATCH"])
    bp.add_url_rule("/tiers/simulate", view_func=simulate, methods=["POST"])
    bp.add_url_rule("/tier-policy", view_func=get_policy, methods=["GET"])
    bp.add_url_rule("/tier-policy", view_func=put_policy, methods=["PUT"], endpoint="put_policy")
