from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from marshmallow import Schema, fields

from app.checkins import services as checkins
from app.points import services
from app.web.auth import member_required
from app.web.deps import container
from app.web.endpoint import endpoint
from app.web.idempotency import idempotent
from app.web.pagination import page_of, page_request
from app.web.schemas import LedgerEntrySchema


class PageQuery(Schema):
    limit = fields.String()
    cursor = fields.String()


class CheckinOut(Schema):
    points = fields.Integer()
    streak = fields.Integer()


@member_required
@endpoint(
    summary="My points ledger, newest first",
    query=PageQuery,
    response=LedgerEntrySchema,
    paginated=True,
    errors=("401",),
)
def ledger(query: dict[str, Any]) -> dict[str, Any]:
    page = page_request()
    rows = services.list_ledger(
        uow=container().uow(), member_id=g.member_id, before_id=page.after, limit=page.limit + 1
    )
    return page_of(rows, page, LedgerEntrySchema().dump, key=lambda row: row.id)


@member_required
@idempotent
@endpoint(
    summary="Check in for today (business day in the brand's time zone)",
    response=CheckinOut,
    errors=("401", "409"),
)
def check_in() -> Any:
    return checkins.check_in(uow=container().uow(), member_id=g.member_id)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/points/ledger", view_func=ledger, methods=["GET"])
    bp.add_url_rule("/checkins", view_func=check_in, methods=["POST"])
