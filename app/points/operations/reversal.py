"""Reversal (refunds) and debt: what cannot be taken back is owed, and paid by later points."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app import clock
from app.points.locks import lock_account
from app.points.models import PointsAccount, PointsEntry
from app.points.operations.ledger import write_debt_settlement, write_entry
from app.points.operations.lots import consume, expired_of_order, live_lots


@dataclass(frozen=True)
class ReverseResult:
    entry: PointsEntry | None
    reversed_points: int  # taken from the balance
    debt_added: int  # could not be taken: already spent


def reverse(
    session: Session,
    *,
    member_id: int,
    points: int,
    note: str | None = None,
    order_id: int | None = None,
    still_reversible: int | None = None,
) -> ReverseResult:
    """Take back points (a refund): first from the order's own lot, then from the others;
    what the member already spent becomes a debt instead of a negative balance.

    ``still_reversible`` (the order's points not yet taken back) is lowered by what of the
    order's points expired unused: the member lost those once already."""
    if points <= 0:
        return ReverseResult(None, 0, 0)
    account = lock_account(session, member_id)
    lots = live_lots(session, account, clock.now())
    if still_reversible is not None and order_id is not None:
        points = min(points, max(0, still_reversible - expired_of_order(session, order_id)))
        if points == 0:
            return ReverseResult(None, 0, 0)
    takeable = min(points, account.balance)
    if takeable:
        own = [lot for lot in lots if order_id is not None and lot.order_id == order_id]
        left = consume(session, own, takeable)
        left = consume(session, lots, left) if left else 0
        if left:
            raise AssertionError("open lots disagree with the balance")
    debt = points - takeable
    account.debt += debt
    entry = None
    if takeable:
        entry = write_entry(
            session,
            account,
            delta=-takeable,
            kind="reverse",
            reason_code="refund",
            note=note,
            order_id=order_id,
        )
    return ReverseResult(entry, takeable, debt)


def settle_debt(session: Session, account: PointsAccount) -> int:
    """Pay the (locked) account's debt from its balance, as far as it goes."""
    lots = live_lots(session, account, clock.now())
    settled = min(account.debt, account.balance)
    if settled <= 0:
        return 0
    if consume(session, lots, settled):
        raise AssertionError("open lots disagree with the balance")
    write_debt_settlement(session, account, settled)
    return settled
