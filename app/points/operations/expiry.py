"""Expiry under the account's lock: the balance a change starts from, the expiry job's step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app import clock
from app.points.locks import lock_account
from app.points.models import PointsEntry
from app.points.operations.lots import expire_overdue


def locked_balance(session: Session, member_id: int) -> int:
    """The balance under the account's lock, after writing off what has expired: what a
    change made next in this transaction starts from."""
    account = lock_account(session, member_id)
    expire_overdue(session, account, clock.now())
    return account.balance


def expire_due(session: Session, *, member_id: int, now: datetime) -> PointsEntry | None:
    """Remove what is left of the member's lots that have expired by ``now``."""
    return expire_overdue(session, lock_account(session, member_id), now)
