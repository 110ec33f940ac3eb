"""The points context's merge step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.points.locks import lock_accounts
from app.points.models import PointsLot
from app.points.operations.ledger import write_entry
from app.points.operations.reversal import settle_debt


def move_points(session: Session, loser_id: int, survivor_id: int) -> dict[str, Any]:
    """Merge step: the loser's open lots and debt move to the survivor, each side's ledger
    records the transfer, so both still sum to their balances."""
    accounts = lock_accounts(session, loser_id, survivor_id)
    loser, survivor = accounts[loser_id], accounts[survivor_id]
    moved = loser.balance
    session.execute(
        update(PointsLot)
        .where(PointsLot.member_id == loser_id, PointsLot.remaining > 0)
        .values(member_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    if moved:
        note = f"merged into member {survivor_id}"
        write_entry(session, loser, delta=-moved, kind="adjust", reason_code="merge", note=note)
        note = f"merged from member {loser_id}"
        write_entry(session, survivor, delta=moved, kind="adjust", reason_code="merge", note=note)
    survivor.debt += loser.debt
    debt, loser.debt = loser.debt, 0
    session.flush()
    # A debt exists only at a zero balance: what one side owes, the other side's points pay.
    settled = settle_debt(session, survivor)
    return {"points": moved, "points_debt": debt, "points_debt_settled": settled}
