from __future__ import annotations

from typing import Any

from flask import Blueprint
from marshmallow import Schema, fields, validate

from app.admins import services
from app.admins.models import Role
from app.web.auth import admin_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.pagination import page_of, page_request
from app.web.schemas import LocalDateTime, about


class AuditQuery(Schema):
    target_type = fields.String(
        validate=validate.Length(max=32),
        metadata=about("Only changes to this kind of thing: member, tier, points_rules ..."),
    )
    limit = fields.String(metadata=about("Page size, 1 to 100 (default 20)."))
    cursor = fields.String(metadata=about("The next_cursor of the page before."))


class AuditEntryOut(Schema):
    id = fields.Integer(metadata=about("The entry's id."))
    actor_type = fields.String(
        metadata=about("Who acted: admin, cli, system (jobs) or anonymous (failed log-ins).")
    )
    actor_id = fields.Integer(allow_none=True, metadata=about("The operator's id, if an operator."))
    actor_name = fields.String(metadata=about("The operator's username, or the job's name."))
    action = fields.String(metadata=about("What was done: tier.create, points.adjust ..."))
    target_type = fields.String(metadata=about("The kind of thing changed: tier, member ..."))
    target_id = fields.String(allow_none=True, metadata=about("Which one, or null for documents."))
    before = fields.Dict(allow_none=True, metadata=about("Its state before; null for a creation."))
    after = fields.Dict(allow_none=True, metadata=about("Its state after; null for a removal."))
    created_at = LocalDateTime(metadata=about("When."))


@admin_required(Role.ADMIN)
@endpoint(
    summary="Audit log of every admin change, newest first",
    query=AuditQuery,
    response=AuditEntryOut,
    paginated=True,
    errors=("401", "403"),
    tag="Admin: audit",
    description="Every change made through the admin API, the CLI and the jobs, and every "
    "operator log-in and failed attempt, newest first, with the state before and after. "
    "Role `admin` only. Filter with `target_type`; paginate with `limit` and `cursor`.",
    response_example={
        "items": [
            {
                "id": 5,
                "actor_type": "admin",
                "actor_id": 1,
                "actor_name": "ops.li",
                "action": "points.adjust",
                "target_type": "member",
                "target_id": "1",
                "before": {"balance": 124},
                "after": {"balance": 224, "delta": 100, "reason": "Goodwill for a late delivery"},
                "created_at": "2026-12-02T22:57:55+08:00",
            }
        ],
        "next_cursor": "djE6NQ",
    },
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
