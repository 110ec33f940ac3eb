"""The audit log, written by every context's admin-facing service in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.admins.models import ActorType, AuditEntry


@dataclass(frozen=True)
class Actor:
    type: ActorType
    name: str
    id: int | None = None


CLI = Actor(type=ActorType.CLI, name="cli")
SYSTEM = Actor(type=ActorType.SYSTEM, name="system")


def record_change(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    entry = AuditEntry(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        before=before,
        after=after,
    )
    session.add(entry)
    session.flush()
    return entry
