from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from admin_api.auth import EmptyBody
from app.members import services
from app.members import sessions as member_sessions
from app.readside import members as member_views
from app.web.auth import admin_required, current_actor
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.pagination import MAX_ID, page_of, page_request
from app.web.schemas import AdminLedgerEntrySchema, LocalDateTime, MemberSchema, TierSchema

READERS = ("admin", "operator", "analyst")


class MemberQuery(Schema):
    card_no = fields.String(validate=validate.Length(min=1, max=32))
    phone = fields.String(validate=validate.Length(min=1, max=24))
    limit = fields.String()
    cursor = fields.String()


class AdminMemberSchema(MemberSchema):
    status = fields.String()
    registration_channel = fields.String()
    registration_store = fields.String(allow_none=True)
    merged_into_id = fields.Integer(allow_none=True)


class IdentityOut(Schema):
    provider = fields.String()
    app_id = fields.String()
    external_id = fields.String()
    created_at = LocalDateTime()
    last_seen_at = LocalDateTime()


class MergeOut(Schema):
    from_member_id = fields.Integer()
    into_member_id = fields.Integer()
    reason = fields.String()
    moved = fields.Dict()
    created_at = LocalDateTime()


class ExpiringOut(Schema):
    points = fields.Integer()
    expires_at = LocalDateTime()


class PointsSummaryOut(Schema):
    balance = fields.Integer()
    debt = fields.Integer()
    expiring = fields.List(fields.Nested(ExpiringOut))


class TierChangeOut(Schema):
    from_code = fields.String(allow_none=True)
    to_code = fields.String(allow_none=True)
    reason = fields.String()
    metric_value = fields.Integer()
    created_at = LocalDateTime()


class MemberDetailOut(Schema):
    member = fields.Nested(AdminMemberSchema)
    identities = fields.List(fields.Nested(IdentityOut))
    merges = fields.List(fields.Nested(MergeOut))
    points = fields.Nested(PointsSummaryOut)
    ledger = fields.List(fields.Nested(AdminLedgerEntrySchema))
    tier = fields.Nested(TierSchema, allow_none=True)
    tier_history = fields.List(fields.Nested(TierChangeOut))


@admin_required(*READERS)
@endpoint(
    summary="Find members by card number or phone (newest first without a filter)",
    query=MemberQuery,
    response=AdminMemberSchema,
    paginated=True,
    errors=("401", "403"),
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
)
def member_detail(member_id: int) -> Any:
    return member_views.member_detail(uow=container().uow(), member_id=member_id)


class SessionsRevokedOut(Schema):
    revoked_sessions = fields.Integer()


@admin_required("admin", "operator")
@endpoint(
    summary="End every mini-program session of a member (and of members merged into it)",
    body=EmptyBody,
    body_optional=True,
    response=SessionsRevokedOut,
    errors=("401", "403", "404"),
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
