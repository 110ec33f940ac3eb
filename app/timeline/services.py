"""Reading a member's timeline."""

from __future__ import annotations

from sqlalchemy import select

from app.db import newest_first
from app.errors import NotFound
from app.members import operations as members
from app.timeline.models import TimelineEntry
from app.uow import UnitOfWork


def list_timeline(
    *, uow: UnitOfWork, member_id: int, before_id: int | None, limit: int
) -> list[TimelineEntry]:
    """The member's history, newest first (a merged member's id shows the survivor's)."""
    with uow:
        member = members.get_active(uow.session, member_id)
        if member is None:
            raise NotFound("No such member.")
        query = select(TimelineEntry).where(TimelineEntry.member_id == member.id)
        page = newest_first(query, TimelineEntry.id, before_id=before_id, limit=limit)
        return list(uow.session.scalars(page))
