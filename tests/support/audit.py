"""The audit log as the database has it now."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AuditEntry


def audit_entries(session: Session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
