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
from app.web.schemas import LedgerEntrySchema, about

TAG = "Mini-program: points"


class PageQuery(Schema):
    limit = fields.String(metadata=about("Page size, 1 to 100 (default 20)."))
    cursor = fields.String(metadata=about("The next_cursor of the page before."))


class CheckinOut(Schema):
    points = fields.Integer(
        metadata=about("Points earned by this check-in (streak bonus included).")
    )
    streak = fields.Integer(metadata=about("Consecutive business days checked in, today included."))


@member_required
@endpoint(
    summary="My points ledger, newest first",
    query=PageQuery,
    response=LedgerEntrySchema,
    paginated=True,
    errors=("401",),
    tag=TAG,
    description="The member's points history, newest first, paginated with `limit` and "
    "`cursor`. Each entry carries the balance after it; entries are never changed.",
    response_example={
        "items": [
            {
                "id": 2,
                "delta": 258,
                "kind": "earn",
                "reason_code": "order",
                "reason": "订单积分",
                "balance_after": 263,
                "created_at": "2026-12-02T14:30:05+08:00",
            },
            {
                "id": 1,
                "delta": 5,
                "kind": "earn",
                "reason_code": "checkin",
                "reason": "每日签到",
                "balance_after": 5,
                "created_at": "2026-12-02T09:01:12+08:00",
            },
        ],
        "next_cursor": None,
    },
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
    tag=TAG,
    description="Checks the member in for today's business day (the brand's time zone) and "
    "earns the points rules' check-in points, plus a streak bonus on the days the rules "
    "name. A second check-in the same business day is 409 `limit_reached`. No body. Accepts "
    "`Idempotency-Key`.",
    response_example={"points": 5, "streak": 1},
)
def check_in() -> Any:
    return checkins.check_in(uow=container().uow(), member_id=g.member_id)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/points/ledger", view_func=ledger, methods=["GET"])
    bp.add_url_rule("/checkins", view_func=check_in, methods=["POST"])
