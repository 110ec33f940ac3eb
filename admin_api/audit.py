from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from app.admins import services
from app.web.auth import admin_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.pagination import page_of, page_request
from app.web.schemas import LocalDateTime


class AuditQuery(Schema):
    target_type = fields.String(validate=validate.Length(max=32))
    limit = fields.String()
    cursor = fields.String()


class AuditEntryOut(Schema):
    id = fields.Integer()
    actor_type = fields.String()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.String()
    action = fields.String()
    target_type = fields.String()
    target_id = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    created_at = LocalDateTime()


@admin_required("admin")
@endpoint(
    summary="Audit log of every admin change, newest first",
    query=AuditQuery,
    response=AuditEntryOut,
    paginated=True,
    errors=("401", "403"),
)
def audit_log(query: dict[str, Any]) -> dict[str, Any]:
    page = page_request()
    rows = services.list_audit_log(
        uow=container().uow(),
        before_id=page.after,
        limit=page.limit + 1,
        target_type=query.get("target_type"),
    )
    return page_of(rows, page, AuditEntryOut().dump, key=lambda row: row.id)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/audit-log", view_func=audit_log, methods=["GET"])
