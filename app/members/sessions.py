"""Mini-program sessions: one row per log-in, named by the member's token.

The token check reads one row by primary key (``session_is_live``), so revocation holds
on every worker at once, with no cache to go stale. A logout revokes the session it is
made with; an operator revokes every session of a member (and of the members merged
into it, whose tokens act for it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from app import clock
from app.admins.operations import Actor, record_change
from app.errors import NotFound
from app.members.models import Member, MemberSession
from app.uow import UnitOfWork


def open_session(*, uow: UnitOfWork, member_id: int) -> int:
    with uow:
        row = MemberSession(member_id=member_id)
        uow.session.add(row)
        uow.session.flush()
        session_id = row.id
        uow.commit()
        return session_id


def session_is_live(*, uow: UnitOfWork, session_id: int, member_id: int) -> bool:
    """One primary-key read: the session exists, belongs to the member and is not revoked."""
    with uow:
        row = uow.session.execute(
            select(MemberSession.member_id, MemberSession.revoked_at).where(
                MemberSession.id == session_id
            )
        ).one_or_none()
        return row is not None and row.member_id == member_id and row.revoked_at is None


def end_session(*, uow: UnitOfWork, session_id: int, member_id: int) -> None:
    """Logout: this session's tokens stop working; the member's other sessions stay."""
    with uow:
        uow.session.execute(
            update(MemberSession)
            .where(
                MemberSession.id == session_id,
                MemberSession.member_id == member_id,
                MemberSession.revoked_at.is_(None),
            )
            .values(revoked_at=clock.now())
        )
        uow.commit()


def revoke_member_sessions(*, uow: UnitOfWork, actor: Actor, member_id: int) -> int:
    """Every live session of the member and of the members merged into it ends (audited);
    answers how many."""
    with uow:
        if uow.session.get(Member, member_id) is None:
            raise NotFound("No such member.")
        member_ids = _with_merged(uow, member_id)
        result: Any = uow.session.execute(
            update(MemberSession)
            .where(MemberSession.member_id.in_(member_ids), MemberSession.revoked_at.is_(None))
            .values(revoked_at=clock.now())
        )
        revoked = int(result.rowcount or 0)
        record_change(
            uow.session,
            actor=actor,
            action="member.sessions_revoke",
            target_type="member",
            target_id=member_id,
            before=None,
            after={"revoked_sessions": revoked},
        )
        uow.commit()
        return revoked


def _with_merged(uow: UnitOfWork, member_id: int) -> list[int]:
    found = [member_id]
    frontier = [member_id]
    while frontier:
        frontier = list(
            uow.session.scalars(select(Member.id).where(Member.merged_into_id.in_(frontier)))
        )
        frontier = [mid for mid in frontier if mid not in found]
        found.extend(frontier)
    return found


def purge_sessions_before(*, uow: UnitOfWork, cutoff: datetime) -> int:
    """Sessions opened before ``cutoff`` can carry no unexpired token: delete them."""
    with uow:
        result: Any = uow.session.execute(
            delete(MemberSession).where(MemberSession.created_at < cutoff)
        )
        uow.commit()
        return int(result.rowcount or 0)
