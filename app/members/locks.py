"""Every row lock of the members context: member rows, first in the global order
(``app.locks``), several at once in ascending id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.members.models import Member


def lock_members(session: Session, *member_ids: int) -> dict[int, Member]:
    """Lock the members' rows until the transaction ends, in one statement that takes them
    in id order: every merge locks its two members this way first, so concurrent merges
    (many members binding one phone) queue on the survivor instead of deadlocking."""
    rows = session.scalars(
        select(Member)
        .where(Member.id.in_(sorted(set(member_ids))))
        .order_by(Member.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.id: row for row in rows}
