"""Operator sessions: one row per log-in, named by the admin token.

The token check reads the session and its account in one query by primary key, so a
logout, a disabled account or ``revoke_admin_sessions`` (for a disabled account or a
reset password) holds on every worker at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app import clock
from app.admins.models import AdminSession, AdminUser
from app.uow import UnitOfWork


def open_session(*, uow: UnitOfWork, admin_id: int) -> int:
    with uow:
        row = AdminSession(admin_id=admin_id)
        uow.session.add(row)
        uow.session.flush()
        session_id = row.id
        uow.commit()
        return session_id


def active_admin_for_session(
    *, uow: UnitOfWork, session_id: int, admin_id: int
) -> AdminUser | None:
    """The account, when the session is live and names it and the account is active."""
    with uow:
        return uow.session.scalars(
            select(AdminUser)
            .join(AdminSession, AdminSession.admin_id == AdminUser.id)
            .where(
                AdminSession.id == session_id,
                AdminSession.revoked_at.is_(None),
                AdminUser.id == admin_id,
                AdminUser.active.is_(True),
            )
        ).one_or_none()


def end_session(*, uow: UnitOfWork, session_id: int, admin_id: int) -> None:
    """Logout: this session's tokens stop working."""
    with uow:
        uow.session.execute(
            update(AdminSession)
            .where(
                AdminSession.id == session_id,
                AdminSession.admin_id == admin_id,
                AdminSession.revoked_at.is_(None),
            )
            .values(revoked_at=clock.now())
        )
        uow.commit()


def revoke_sessions_in(session: Session, *, admin_id: int) -> int:
    """Every live session of the account ends, inside the caller's transaction: for the use
    cases that disable an account or reset its password. Answers how many."""
    result: Any = session.execute(
        update(AdminSession)
        .where(AdminSession.admin_id == admin_id, AdminSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    return int(result.rowcount or 0)


def revoke_admin_sessions(*, uow: UnitOfWork, admin_id: int) -> int:
    """``revoke_sessions_in`` as a transaction of its own."""
    with uow:
        revoked = revoke_sessions_in(uow.session, admin_id=admin_id)
        uow.commit()
        return revoked


def purge_sessions_before(*, uow: UnitOfWork, cutoff: datetime) -> int:
    """Sessions opened before ``cutoff`` can carry no unexpired token: delete them."""
    with uow:
        result: Any = uow.session.execute(
            delete(AdminSession).where(AdminSession.created_at < cutoff)
        )
        uow.commit()
        return int(result.rowcount or 0)
