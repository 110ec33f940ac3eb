"""Reading and cleaning rows: counts, fresh reads, and the clean-up of tests whose app
commits for real."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

import app.models  # noqa: F401 - every table on the metadata
from app.admins.models import AdminUser, AuditEntry
from app.db import Base
from app.idempotency.models import IdempotencyRecord
from app.members.models import Member, MemberIdentity, MemberMerge
from app.outbox.models import OutboxMessage
from app.partners.models import Partner


def count_rows(session: Session, model: Any, *where: Any) -> int:
    """Rows of ``model`` matching ``where``, as the database holds them now."""
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def reload(session: Session, model: Any, row_id: int) -> Any:
    """The row as the database has it now (services wrote it through other sessions)."""
    session.expire_all()
    return session.get(model, row_id)


COUNTED = (
    Member,
    MemberIdentity,
    MemberMerge,
    IdempotencyRecord,
    AdminUser,
    AuditEntry,
    Partner,
    OutboxMessage,
)


class NewRows:
    """Rows added since the test began. Counting from a baseline keeps a row that some other
    committing test failed to delete out of this test's sums."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._start = {model: count_rows(session, model) for model in COUNTED}

    def added(self, model: Any) -> int:
        return count_rows(self._session, model) - self._start[model]


def snapshot_rows(engine: Engine) -> dict[str, int]:
    """The highest id of every table with an ``id`` column: what ``remove_rows_since`` keeps
    (tables keyed by member are cleaned by the members' ids)."""
    snapshot: dict[str, int] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if "id" in table.c:
                top = connection.scalar(select(func.coalesce(func.max(table.c.id), 0)))
                snapshot[table.name] = int(top or 0)
    return snapshot


def remove_rows_since(engine: Engine, snapshot: dict[str, int]) -> None:
    """Delete every row written after ``snapshot``: for tests whose app commits for real."""
    newest_member = snapshot["members"]
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE members SET merged_into_id = NULL, referrer_id = NULL WHERE id > :id"),
            {"id": newest_member},
        )
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in snapshot:
                connection.execute(table.delete().where(table.c.id > snapshot[table.name]))
            elif "member_id" in table.c:
                connection.execute(table.delete().where(table.c.member_id > newest_member))
