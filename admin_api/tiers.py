from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from app.admins.models import Role
from app.tiers import rules, services
from app.web.auth import admin_required, current_actor
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.schemas import CleanString, StrictInt, about

WRITERS = (Role.ADMIN, Role.OPERATOR)
READERS = (Role.ADMIN, Role.OPERATOR, Role.ANALYST)
CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="a lowercase code: gold, diamond")
TAG = "Admin: tiers"
GOLD = {
    "code": "gold",
    "name": "金卡",
    "rank": 2,
    "threshold": 500000,
    "benefits": {"points_multiplier_pct": 150, "free_shipping": True},
}
POLICY_EXAMPLE = {
    "metric": "spend_cents",
    "window": {"kind": "rolling_days", "days": 365},
    "retention_days": 365,
}


class BenefitsIn(Schema):
    points_multiplier_pct = StrictInt(
        validate=validate.Range(min=0, max=1000),
        metadata=about("Order points multiplier, percent (150: half as many again)."),
    )
    discount_pct = StrictInt(
        validate=validate.Range(min=0, max=100), metadata=about("Member discount, percent off.")
    )
    free_shipping = fields.Boolean(
        truthy={True}, falsy={False}, metadata=about("Free shipping on online orders.")
    )
    priority_service = fields.Boolean(
        truthy={True}, falsy={False}, metadata=about("Priority customer service.")
    )
    birthday_coupon_template_id = StrictInt(
        allow_none=True, metadata=about("Coupon template given in the birthday month, or null.")
    )
    upgrade_gift_points = StrictInt(
        validate=validate.Range(min=0, max=10**7),
        metadata=about("Points given once on reaching the tier."),
    )


_NAME = "Display name, 1 to 32 characters: 金卡."
_RANK = "Order of the ladder, lowest first; unique."
_THRESHOLD = "The tier metric's value that reaches the tier (cents or points, by the policy)."


class TierIn(Schema):
    code = fields.String(
        required=True, validate=CODE, metadata=about("Lowercase code, unique and fixed: gold.")
    )
    name = CleanString(
        required=True, validate=validate.Length(min=1, max=32), metadata=about(_NAME)
    )
    rank = StrictInt(required=True, validate=validate.Range(min=0, max=1000), metadata=about(_RANK))
    threshold = StrictInt(
        required=True, validate=validate.Range(min=0, max=10**13), metadata=about(_THRESHOLD)
    )
    benefits = fields.Nested(
        BenefitsIn, load_default=dict, metadata=about("What members of the tier get.")
    )


class TierPatch(Schema):
    name = CleanString(validate=validate.Length(min=1, max=32), metadata=about(_NAME))
    rank = StrictInt(validate=validate.Range(min=0, max=1000), metadata=about(_RANK))
    threshold = StrictInt(validate=validate.Range(min=0, max=10**13), metadata=about(_THRESHOLD))
    benefits = fields.Nested(
        BenefitsIn, metadata=about("What members of the tier get (replaces the benefits).")
    )


class TierOut(Schema):
    code = fields.String(metadata=about("The tier's code."))
    name = fields.String(metadata=about("Display name."))
    rank = fields.Integer(metadata=about("Order of the ladder, lowest first."))
    threshold = fields.Integer(metadata=about(_THRESHOLD))
    benefits = fields.Dict(metadata=about("What members of the tier get."))


class TierList(Schema):
    items = fields.List(fields.Nested(TierOut), metadata=about("The tiers, lowest rank first."))


# The HTTP contract's names for the schemas of app.tiers.rules, which validate the policy
# here and on every read, and build TierPolicy.
class WindowIn(rules.WindowSchema):
    pass


class PolicyIn(rules.TierPolicySchema):
    window = fields.Nested(WindowIn, required=True, metadata=about("Over which period."))


class PolicyOut(PolicyIn):
    pass


class SimulateIn(Schema):
    thresholds = fields.Dict(
        keys=fields.String(validate=CODE),
        values=StrictInt(validate=validate.Range(min=0, max=10**13)),
        required=True,
        metadata=about("Tier code to the threshold to try; tiers not named keep theirs."),
    )


class SimulateOut(Schema):
    distribution = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata=about("Tier code to how many members would hold it today."),
    )


@admin_required(*READERS)
@endpoint(
    summary="The tier ladder",
    response=TierList,
    errors=("401", "403"),
    tag=TAG,
    description="Roles admin, operator, analyst. Every tier, lowest rank first.",
    response_example={
        "items": [
            {
                "code": "silver",
                "name": "银卡",
                "rank": 1,
                "threshold": 0,
                "benefits": {"points_multiplier_pct": 100},
            },
            GOLD,
        ]
    },
)
def list_tiers() -> Any:
    return {"items": services.list_tiers(uow=container().uow())}


@admin_required(*WRITERS)
@endpoint(
    summary="Add a tier (audited)",
    body=TierIn,
    response=TierOut,
    status=201,
    errors=("401", "403", "409"),
    tag=TAG,
    description="Roles admin and operator (audited). Adds a tier to the ladder; members "
    "move into it at their next assessment. A code or rank already taken: 409 `conflict`.",
    example=GOLD,
    response_example=GOLD,
)
def create_tier(body: dict[str, Any]) -> Any:
    return services.create_tier(uow=container().uow(), actor=current_actor(), fields=body)


@admin_required(*WRITERS)
@endpoint(
    summary="Change a tier (audited)",
    body=TierPatch,
    response=TierOut,
    errors=("401", "403", "404", "409"),
    tag=TAG,
    description="Roles admin and operator (audited). Changes the fields sent; the code is "
    "fixed. Unknown code: 404; a rank another tier has: 409 `conflict`.",
    example={"threshold": 400000, "benefits": {"points_multiplier_pct": 150}},
    response_example={**GOLD, "threshold": 400000, "benefits": {"points_multiplier_pct": 150}},
)
def update_tier(code: str, body: dict[str, Any]) -> Any:
    return services.update_tier(
        uow=container().uow(), actor=current_actor(), code=code, changes=body
    )


@admin_required(*READERS)
@endpoint(
    summary="The tier policy",
    response=PolicyOut,
    errors=("401", "403"),
    tag=TAG,
    description="Roles admin, operator, analyst. How tiers are measured: the metric, the "
    "window and how long a tier is kept.",
    response_example=POLICY_EXAMPLE,
)
def get_policy() -> Any:
    return services.get_policy(uow=container().uow())


@admin_required(*WRITERS)
@endpoint(
    summary="Replace the tier policy (audited)",
    body=PolicyIn,
    response=PolicyOut,
    errors=("401", "403"),
    tag=TAG,
    description="Roles admin and operator (audited). Replaces the whole policy; it applies "
    "from the next assessment.",
    example=POLICY_EXAMPLE,
    response_example=POLICY_EXAMPLE,
)
def put_policy(body: rules.TierPolicy) -> Any:
    return services.put_policy(uow=container().uow(), actor=current_actor(), policy=body)


@admin_required(*READERS)
@endpoint(
    summary="How many members each tier would hold today with these thresholds (changes "
    "nothing). One runs at a time: another call meanwhile is 409 already_running.",
    body=SimulateIn,
    response=SimulateOut,
    errors=("401", "403", "409:already_running"),
    tag=TAG,
    description="Roles admin, operator, analyst. Counts how many members each tier would "
    "hold today if the thresholds named were in force; changes nothing. Unknown tier codes: "
    "422. One simulation runs at a time: another meanwhile is 409 `already_running`.",
    example={"thresholds": {"silver": 0, "gold": 300000}},
    response_example={"distribution": {"silver": 1830, "gold": 214}},
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
