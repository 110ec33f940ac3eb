"""Every row lock of the admins context: an operator account, locked alone (no other
lock is held with it; see ``app.locks``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AdminUser


def lock_admin(session: Session, username: str) -> AdminUser | None:
    """The account with this username, locked until the transaction ends."""
    return session.scalars(
        select(AdminUser).where(AdminUser.username == username).with_for_update()
    ).one_or_none()
