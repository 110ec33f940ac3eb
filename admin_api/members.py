from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.auth import EmptyBody
from app.admins.models import Role
from app.members import services
from app.members import sessions as member_sessions
from app.readside import members as member_views
from app.web.auth import admin_required, current_actor
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.pagination import MAX_ID, page_of, page_request
from app.web.schemas import (
    ADJUSTMENT_EXAMPLE,
    MEMBER_EXAMPLE,
    AdminLedgerEntrySchema,
    LocalDateTime,
    MemberSchema,
    TierSchema,
    about,
)

READERS = (Role.ADMIN, Role.OPERATOR, Role.ANALYST)
TAG = "Admin: members"
ADMIN_MEMBER_EXAMPLE = {
    **MEMBER_EXAMPLE,
    "status": "active",
    "registration_channel": "miniprogram",
    "registration_store": None,
    "merged_into_id": None,
}


class MemberQuery(Schema):
    card_no = fields.String(
        validate=validate.Length(min=1, max=32), metadata=about("Exact card number.")
    )
    phone = fields.String(
        validate=validate.Length(min=1, max=24), metadata=about("Exact phone number.")
    )
    limit = fields.String(metadata=about("Page size, 1 to 100 (default 20)."))
    cursor = fields.String(metadata=about("The next_cursor of the page before."))


class AdminMemberSchema(MemberSchema):
    status = fields.String(metadata=about("active, or merged (into merged_into_id)."))
    registration_channel = fields.String(metadata=about("Where the member joined: miniprogram ..."))
    registration_store = fields.String(
        allow_none=True, metadata=about("The store the member joined in, if any.")
    )
    merged_into_id = fields.Integer(
        allow_none=True, metadata=about("The member this one was merged into, or null.")
    )


class IdentityOut(Schema):
    provider = fields.String(metadata=about("Whose identity: wechat_mp, wechat_oa, channel ..."))
    app_id = fields.String(metadata=about("The app (mini-program appid, channel) it belongs to."))
    external_id = fields.String(metadata=about("The id there: openid, unionid ..."))
    created_at = LocalDateTime(metadata=about("First seen."))
    last_seen_at = LocalDateTime(metadata=about("Last seen."))


class MergeOut(Schema):
    from_member_id = fields.Integer(metadata=about("The member merged away."))
    into_member_id = fields.Integer(metadata=about("The surviving member."))
    reason = fields.String(metadata=about("Why: the same phone number ..."))
    moved = fields.Dict(metadata=about("What moved, by kind: points, identities, orders ..."))
    created_at = LocalDateTime(metadata=about("When."))


class ExpiringOut(Schema):
    points = fields.Integer(metadata=about("Points that expire at expires_at."))
    expires_at = LocalDateTime(metadata=about("When those points expire."))


class PointsSummaryOut(Schema):
    balance = fields.Integer(metadata=about("Points the member can spend now."))
    debt = fields.Integer(metadata=about("Points owed from refunds, taken from later earnings."))
    expiring = fields.List(
        fields.Nested(ExpiringOut), metadata=about("Points by expiry date, soonest first.")
    )


class TierChangeOut(Schema):
    from_code = fields.String(allow_none=True, metadata=about("The tier before, or null."))
    to_code = fields.String(allow_none=True, metadata=about("The tier after, or null."))
    reason = fields.String(metadata=about("Why: order 42, assessment, merged from member 7 ..."))
    metric_value = fields.Integer(metadata=about("The tier metric's value at the change."))
    created_at = LocalDateTime(metadata=about("When."))


class MemberDetailOut(Schema):
    member = fields.Nested(AdminMemberSchema, metadata=about("The member."))
    identities = fields.List(
        fields.Nested(IdentityOut), metadata=about("WeChat and channel identities.")
    )
    merges = fields.List(fields.Nested(MergeOut), metadata=about("Members merged into this one."))
    points = fields.Nested(PointsSummaryOut, metadata=about("Balance, debt, expiries."))
    ledger = fields.List(
        fields.Nested(AdminLedgerEntrySchema), metadata=about("The latest ledger entries.")
    )
    tier = fields.Nested(TierSchema, allow_none=True, metadata=about("The current tier, or null."))
    tier_history = fields.List(
        fields.Nested(TierChangeOut), metadata=about("Tier changes, newest first.")
    )


@admin_required(*READERS)
@endpoint(
    summary="Find members by card number or phone (newest first without a filter)",
    query=MemberQuery,
    response=AdminMemberSchema,
    paginated=True,
    errors=("401", "403"),
    tag=TAG,
    description="Roles admin, operator, analyst. With `card_no` or `phone`: the member "
    "with exactly that value; without a filter, every member, newest first. Paginated with "
    "`limit` and `cursor`.",
    response_example={"items": [ADMIN_MEMBER_EXAMPLE], "next_cursor": None},
)
def list_members(query: dict[str, Any]) -> dict[str, Any]:
    page = page_request()
    rows = services.search_members(
        uow=container().uow(),
        card_no=query.get("card_no"),
        phone=query.get("phone"),
        after_id=page.after,
        limit=page.limit + 1,
    )
    return page_of(rows, page, AdminMemberSchema().dump, key=lambda row: row.id)


@admin_required(*READERS)
@endpoint(
    summary="A member with identities and merge history",
    response=MemberDetailOut,
    errors=("401", "403", "404"),
    tag=TAG,
    description="Roles admin, operator, analyst. One member with identities, merges into "
    "it, points summary, latest ledger entries, tier and tier history. Unknown id: 404.",
    response_example={
        "member": ADMIN_MEMBER_EXAMPLE,
        "identities": [
            {
                "provider": "wechat_mp",
                "app_id": "wx1234567890abcdef",
                "external_id": "oAbc123-openid",
                "created_at": "2026-12-02T22:57:55+08:00",
                "last_seen_at": "2026-12-02T22:57:55+08:00",
            }
        ],
        "merges": [],
        "points": {
            "balance": 224,
            "debt": 0,
            "expiring": [{"points": 224, "expires_at": "2028-01-01T00:00:00+08:00"}],
        },
        "ledger": [ADJUSTMENT_EXAMPLE],
        "tier": {"code": "silver", "name": "银卡", "benefits": {"points_multiplier_pct": 100}},
        "tier_history": [
            {
                "from_code": None,
                "to_code": "silver",
                "reason": "assessment",
                "metric_value": 0,
                "created_at": "2026-12-02T22:57:55+08:00",
            }
        ],
    },
)
def member_detail(member_id: int) -> Any:
    return member_views.member_detail(uow=container().uow(), member_id=member_id)


class SessionsRevokedOut(Schema):
    revoked_sessions = fields.Integer(metadata=about("How many live sessions were ended."))


@admin_required(Role.ADMIN, Role.OPERATOR)
@endpoint(
    summary="End every mini-program session of a member (and of members merged into it)",
    body=EmptyBody,
    body_optional=True,
    response=SessionsRevokedOut,
    errors=("401", "403", "404"),
    tag=TAG,
    description="Roles admin and operator (audited). Ends every mini-program session of "
    "the member and of members merged into it, e.g. after a lost phone: their tokens are "
    "refused from now on and the member logs in again. The body may be absent or `{}`. "
    "Unknown id: 404.",
    example={},
    response_example={"revoked_sessions": 2},
)
def revoke_member_sessions(member_id: int, body: dict[str, Any]) -> dict[str, Any]:
    revoked = member_sessions.revoke_member_sessions(
        uow=container().uow(), actor=current_actor(), member_id=member_id
    )
    return {"revoked_sessions": revoked}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/members", view_func=list_members, methods=["GET"])
    bp.add_url_rule(
        f"/members/<int(max={MAX_ID}):member_id>", view_func=member_detail, methods=["GET"]
    )
    bp.add_url_rule(
        f"/members/<int(max={MAX_ID}):member_id>/sessions/revoke",
        view_func=revoke_member_sessions,
        methods=["POST"],
    )
