"""Every row lock of the partners context: partner rows, locked alone (no other lock is
held with them; see ``app.locks``), several at once in ascending id."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.partners.models import Partner


def lock_partners(session: Session, *criteria: ColumnElement[bool]) -> list[Partner]:
    """The partners matching ``criteria`` (all of them when none), locked until the
    transaction ends, in ascending id."""
    return list(
        session.scalars(select(Partner).where(*criteria).order_by(Partner.id).with_for_update())
    )
