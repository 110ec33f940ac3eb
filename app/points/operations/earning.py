"""Earning: a new lot per credit, an outstanding debt settled first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app import clock
from app.errors import ValidationFailed
from app.points import rules
from app.points.locks import held_account, lock_account
from app.points.models import PointsEntry, PointsLot
from app.points.operations.ledger import (
    entry_by_key,
    points_rules,
    write_debt_settlement,
    write_entry,
)
from app.points.operations.lots import expire_overdue
from app.writes import insert_now


@dataclass(frozen=True)
class EarnResult:
    entries: list[PointsEntry]
    credited: int  # what reached the balance after any debt was settled
    settled_debt: int


def earn(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason_code: str,
    note: str | None = None,
    kind: str = "earn",
    order_id: int | None = None,
    idempotency_key: str | None = None,
    expires_at: datetime | None = None,
) -> EarnResult:
    """Credit points as a new lot; an outstanding debt is settled first, as its own entry."""
    if points <= 0:
        raise ValidationFailed("points to earn must be positive", field="points")
    account = lock_account(session, member_id)
    now = clock.now()
    # Points past their expiry are gone: the new entry's balance_after must not count them.
    expire_overdue(session, account, now)
    if expires_at is None:
        expires_at = rules.expiry_for(now, points_rules(session).expiry, clock.business_tz())
    entry = write_entry(
        session,
        account,
        delta=points,
        kind=kind,
        reason_code=reason_code,
        note=note,
        order_id=order_id,
        idempotency_key=idempotency_key,
    )
    lot = insert_now(
        session,
        PointsLot(
            member_id=member_id,
            entry_id=entry.id,
            order_id=order_id,
            points=points,
            remaining=points,
            earned_at=now,
            expires_at=expires_at,
        ),
    )
    held = held_account(session, member_id)
    if held is not None:
        held.soonest_lot = None  # the new lot may expire sooner
    entries = [entry]
    settled = min(account.debt, points)
    if settled:
        lot.remaining -= settled
        entries.append(write_debt_settlement(session, account, settled, order_id=order_id))
    return EarnResult(entries, points - settled, settled)


def grant_signup_bonus(session: Session, member_id: int) -> int:
    """The sign-up bonus of the points rules, once per member."""
    bonus = points_rules(session).signup_bonus
    key = f"signup:{member_id}"
    if bonus <= 0 or entry_by_key(session, key) is not None:
        return 0
    earn(session, member_id=member_id, points=bonus, reason_code="signup", idempotency_key=key)
    return bonus
