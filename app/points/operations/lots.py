"""Lots: what each earning left, taken soonest-expiring first, written off once expired."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, aliased, load_only

from app.points import rules
from app.points.locks import held_account
from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.points.operations.ledger import write_entry
from app.writes import update_each


def consume(session: Session, lots: list[PointsLot], points: int) -> int:
    """Take ``points`` from ``lots`` in their order; answers the shortfall. The lots taken
    from are written at once (one UPDATE by key, executemany)."""
    by_id = {lot.id: lot for lot in lots}
    taken, shortfall = rules.take_from_lots(
        [rules.LotView(lot.id, lot.remaining) for lot in lots], points
    )
    update_each(
        session,
        [
            (by_id[lot_id], {"remaining": by_id[lot_id].remaining - amount})
            for lot_id, amount in taken
        ],
    )
    return shortfall


def live_lots(session: Session, account: PointsAccount, now: datetime) -> list[PointsLot]:
    """The account's lots with points left, soonest expiry first, after writing off those
    already past their expiry: one read for both."""
    lots = list(
        session.scalars(
            select(PointsLot)
            .where(PointsLot.member_id == account.member_id, PointsLot.remaining > 0)
            .order_by(PointsLot.expires_at, PointsLot.id)
        )
    )
    write_off(session, account, [lot for lot in lots if lot.expires_at <= now])
    return [lot for lot in lots if lot.expires_at > now]


def none_overdue(session: Session, account: PointsAccount, now: datetime) -> bool:
    """Known without a read: the read that locked the account saw its soonest open lot
    expire after ``now`` (or no open lot). Lots only ever expire later than that within
    the transaction: new ones expire in the future, taken ones have less left."""
    held = held_account(session, account.member_id)
    return held is not None and (held.soonest_expiry is None or held.soonest_expiry > now)


def expire_overdue(session: Session, account: PointsAccount, now: datetime) -> PointsEntry | None:
    """Write off what is left of the (locked) account's lots past their expiry."""
    if none_overdue(session, account, now):
        return None
    overdue = session.scalars(
        select(PointsLot).where(
            PointsLot.member_id == account.member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at <= now,
        )
    )
    return write_off(session, account, list(overdue))


# How many of the soonest lots a spend reads first: nearly every spend is covered by one or
# two, and the database then orders and sums this many, not all the member's open lots.
FIRST_LOTS = 16


@functools.cache
def _covering_query(bounded: bool) -> Any:
    """Built once: constructing the windowed query is most of a small spend's own cost."""
    running = func.sum(PointsLot.remaining).over(order_by=(PointsLot.expires_at, PointsLot.id))
    open_now = (
        PointsLot.member_id == bindparam("member_id"),
        PointsLot.remaining > 0,
        PointsLot.expires_at > bindparam("now"),
    )
    candidates = select(PointsLot, running.label("running")).where(*open_now)
    if bounded:
        soonest = select(PointsLot.id).where(*open_now)
        soonest = soonest.order_by(PointsLot.expires_at, PointsLot.id).limit(FIRST_LOTS)
        candidates = candidates.where(PointsLot.id.in_(soonest.subquery().select()))
    ranked = candidates.subquery()
    lot = aliased(PointsLot, ranked)
    # A lot is needed while what the lots before it hold is short of the spend.
    # Only what a spend uses of each lot: PyMySQL parses every column's description.
    return (
        select(lot)
        .options(load_only(lot.id, lot.remaining, lot.expires_at))
        .where(ranked.c.running - ranked.c.remaining < bindparam("points"))
        .order_by(ranked.c.expires_at, ranked.c.id)
    )


def lots_covering(
    session: Session, account: PointsAccount, points: int, now: datetime
) -> list[PointsLot]:
    """The (locked) account's open lots, soonest expiry first, that a spend of ``points``
    takes from, and no more: what it reads does not grow with the member's open lots.
    When the intake's soonest lot covers the spend it is the answer, without a read; else
    the soonest FIRST_LOTS are looked at first, all of them only if those fall short.
    Lots past their expiry must have been written off first (expire_overdue)."""
    held = held_account(session, account.member_id)
    soonest = held.soonest_lot if held is not None else None
    if soonest is not None and soonest.expires_at > now and soonest.remaining >= points:
        return [soonest]  # the intake's soonest lot covers it: nothing to read
    parameters = {"member_id": account.member_id, "now": now, "points": points}
    lots = list(session.scalars(_covering_query(True), parameters))
    if sum(lot.remaining for lot in lots) < points:
        lots = list(session.scalars(_covering_query(False), parameters))
    return lots


def write_off(
    session: Session, account: PointsAccount, overdue: list[PointsLot]
) -> PointsEntry | None:
    """What is left of lots past their expiry leaves the balance as one `expire` entry."""
    total = sum(lot.remaining for lot in overdue)
    if total == 0:
        return None
    for lot in overdue:
        lot.expired += lot.remaining
        lot.remaining = 0
    return write_entry(session, account, delta=-total, kind="expire", reason_code="expiry")


def expired_of_order(session: Session, order_id: int) -> int:
    """What of the order's points expired unused."""
    total = session.scalar(
        select(func.coalesce(func.sum(PointsLot.expired), 0)).where(PointsLot.order_id == order_id)
    )
    return int(total or 0)
