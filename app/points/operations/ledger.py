"""The ledger: entries that move the balance, and the points rules they follow."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.points import rules
from app.points.models import PointsAccount, PointsEntry
from app.settings.operations import read_typed
from app.writes import insert_now, update_now

RULES_KEY = "points_rules"


def points_rules(session: Session) -> rules.PointsRules:
    """The points rules in force, parsed once per use case (defaults when none are set)."""
    return read_typed(session, RULES_KEY, rules.DEFAULT_RULES, rules.parse_points_rules)


def entry_by_key(session: Session, key: str) -> PointsEntry | None:
    return session.scalars(select(PointsEntry).where(PointsEntry.idempotency_key == key)).first()


def write_entry(
    session: Session,
    account: PointsAccount,
    *,
    delta: int,
    kind: str,
    reason_code: str,
    note: str | None = None,
    order_id: int | None = None,
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
) -> PointsEntry:
    """Move the (locked) account's balance by ``delta`` and record it as one entry."""
    balance = account.balance + delta
    if balance < 0:
        raise AssertionError("a points balance may never go negative")
    update_now(session, account, balance=balance, debt=account.debt)
    entry = PointsEntry(
        member_id=account.member_id,
        delta=delta,
        kind=kind,
        reason_code=reason_code,
        reason=rules.member_text(reason_code),
        note=note[:255] if note is not None else None,
        balance_after=account.balance,
        order_id=order_id,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
    )
    return insert_now(session, entry)


def write_debt_settlement(
    session: Session, account: PointsAccount, settled: int, *, order_id: int | None = None
) -> PointsEntry:
    """Pay ``settled`` points of the (locked) account's debt out of its balance, as one
    entry; the caller has already taken them from the account's lots."""
    account.debt -= settled
    return write_entry(
        session,
        account,
        delta=-settled,
        kind="reverse",
        reason_code="debt_settlement",
        note="settles points owed by an earlier refund",
        order_id=order_id,
    )
