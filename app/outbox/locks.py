"""Every row lock of the outbox: messages, locked alone (a drain's own transactions hold
no other lock; see ``app.locks``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.outbox.models import OutboxMessage


def lock_due_messages(session: Session, *, now: datetime, limit: int) -> list[OutboxMessage]:
    """Up to ``limit`` messages due at ``now``, oldest first; rows another drain holds are
    skipped, not waited for (SKIP LOCKED; SQLite has no row locks: a plain read)."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.handled_at.is_(None),
                OutboxMessage.dead_at.is_(None),
                OutboxMessage.available_at <= now,
                or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def lock_message(session: Session, message_id: int) -> OutboxMessage:
    """The message, locked until the transaction ends."""
    return session.scalars(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    ).one()
