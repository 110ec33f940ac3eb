"""A member's points and tier as the database has them, and invariant 1 of PRODUCT.md."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.tiers.models import MemberTier


@dataclass(frozen=True)
class Books:
    """A member's points as the database has them now."""

    balance: int
    debt: int
    ledger_sum: int
    open_lots_sum: int
    entries: list[PointsEntry]
    lots: list[PointsLot]

    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.entries]


def books_of(session: Session, member_id: int) -> Books:
    session.expire_all()
    account = session.get(PointsAccount, member_id)
    entries = list(
        session.scalars(
            select(PointsEntry).where(PointsEntry.member_id == member_id).order_by(PointsEntry.id)
        )
    )
    lots = list(
        session.scalars(
            select(PointsLot).where(PointsLot.member_id == member_id).order_by(PointsLot.id)
        )
    )
    return Books(
        balance=account.balance if account else 0,
        debt=account.debt if account else 0,
        ledger_sum=sum(entry.delta for entry in entries),
        open_lots_sum=sum(lot.remaining for lot in lots if lot.remaining > 0),
        entries=entries,
        lots=lots,
    )


def assert_books_agree(session: Session, member_id: int) -> Books:
    """Invariant 1: balance = sum of the ledger = sum of the open lots, never negative; every
    entry's balance_after is the running sum of the deltas up to it."""
    books = books_of(session, member_id)
    assert books.balance == books.ledger_sum == books.open_lots_sum, books
    assert books.balance >= 0
    assert books.debt >= 0
    running = 0
    for entry in books.entries:
        running += entry.delta
        assert entry.balance_after == running, (entry.id, entry.kind, entry.balance_after)
    assert all(0 <= lot.remaining <= lot.points for lot in books.lots)
    return books


def tier_code_of(session: Session, member_id: int) -> str | None:
    session.expire_all()
    row = session.get(MemberTier, member_id)
    return row.tier_code if row is not None else None
