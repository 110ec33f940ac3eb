"""Recording an event inside the caller's transaction: written at once, never committed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import clock
from app.outbox.events import Event
from app.outbox.models import OutboxMessage
from app.writes import insert_now


def emit(session: Session, event: Event) -> OutboxMessage:
    """The row commits or rolls back with the change it announces."""
    now = clock.now()
    message = OutboxMessage(
        topic=str(event.topic),
        payload=dict(event.payload),
        member_id=event.member_id,
        created_at=now,
        available_at=now,
        attempts=0,
    )
    return insert_now(session, message)
