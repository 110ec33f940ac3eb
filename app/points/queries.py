"""Read-only views of a member's points: what the card, the till, operators and tier
metrics show. Nothing here locks or writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.points.models import EntryKind, PointsAccount, PointsEntry, PointsLot


def members_with_expired_lots(
    session: Session, *, now: datetime, after_member_id: int, limit: int
) -> list[int]:
    return list(
        session.scalars(
            select(PointsLot.member_id)
            .where(
                PointsLot.remaining > 0,
                PointsLot.expires_at <= now,
                PointsLot.member_id > after_member_id,
            )
            .group_by(PointsLot.member_id)
            .order_by(PointsLot.member_id)
            .limit(limit)
        )
    )


def balance_of(session: Session, member_id: int) -> int:
    """What the member can spend now: lots past their expiry no longer count, even before
    the expiry job has written them off."""
    account = session.get(PointsAccount, member_id)
    if account is None:
        return 0
    overdue = session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at <= clock.now(),
        )
    )
    return account.balance - int(overdue or 0)


def account_summary(session: Session, member_id: int) -> dict[str, Any]:
    account = session.get(PointsAccount, member_id)
    return {
        "balance": balance_of(session, member_id),
        "debt": account.debt if account is not None else 0,
        "expiring": expiring_soonest(session, member_id),
    }


def recent_entries(session: Session, member_id: int, limit: int) -> list[PointsEntry]:
    return list(
        session.scalars(
            select(PointsEntry)
            .where(PointsEntry.member_id == member_id)
            .order_by(PointsEntry.id.desc())
            .limit(limit)
        )
    )


def expiring_soonest(session: Session, member_id: int, limit: int = 3) -> list[dict[str, Any]]:
    """The next expiry instants with the points that go then."""
    rows = session.execute(
        select(PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(
            PointsLot.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at > clock.now(),
        )
        .group_by(PointsLot.expires_at)
        .order_by(PointsLot.expires_at)
        .limit(limit)
    ).all()
    return [{"points": int(points), "expires_at": expires_at} for expires_at, points in rows]


def earned_by_member_between(
    session: Session, start: datetime, end: datetime, member_ids: list[int] | None = None
) -> dict[int, int]:
    query = select(PointsEntry.member_id, func.sum(PointsEntry.delta)).where(
        PointsEntry.kind == EntryKind.EARN,
        PointsEntry.created_at >= start,
        PointsEntry.created_at < end,
    )
    if member_ids is not None:
        query = query.where(PointsEntry.member_id.in_(member_ids))
    rows = session.execute(query.group_by(PointsEntry.member_id)).all()
    return {int(member_id): int(total or 0) for member_id, total in rows}
