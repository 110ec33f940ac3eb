"""Timeline steps inside a caller's transaction: the merge step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.timeline.models import TimelineEntry


def move_timeline(session: Session, loser_id: int, survivor_id: int) -> dict[str, Any]:
    """Merge step: the survivor's timeline tells the merged member's history too."""
    result: Any = session.execute(
        update(TimelineEntry)
        .where(TimelineEntry.member_id == loser_id)
        .values(member_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    return {"timeline": result.rowcount} if result.rowcount else {}
