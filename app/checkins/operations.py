from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.checkins.models import Checkin


def move_checkins(session: Session, loser_id: int, survivor_id: int) -> dict[str, Any]:
    """Merge step: the loser's check-ins on days the survivor has none move over."""
    survivor_days = select(Checkin.day).where(Checkin.member_id == survivor_id)
    taken = set(session.scalars(survivor_days))
    query = update(Checkin).where(Checkin.member_id == loser_id)
    if taken:
        query = query.where(Checkin.day.not_in(taken))
    moved: Any = session.execute(
        query.values(member_id=survivor_id).execution_options(synchronize_session=False)
    )
    session.execute(delete(Checkin).where(Checkin.member_id == loser_id))
    return {"checkins": int(moved.rowcount or 0)}
