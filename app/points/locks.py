"""Every row lock of the points context: the account row, one per member.

Accounts are locked after members and before orders (see ``app.locks``); several at once
in ascending member id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.members.models import Member
from app.points.models import PointsAccount, PointsLot
from app.retry import RaceLost


class MergedMeanwhile(RaceLost):
    """The member was merged into another while this transaction worked on it; retry."""

    def __init__(self, member_id: int, survivor_id: int) -> None:
        super().__init__(f"member {member_id} was merged into {survivor_id}")
        self.survivor_id = survivor_id


@dataclass
class Held:
    """An account locked by a composed read (the order or till intake, app.orders.locks)
    with its member's row, so the merge check is already done, and the soonest expiry of
    its open lots as read under that lock (None: no open lot). ``soonest_lot`` is that lot
    while it is known to be the soonest: a lot earned since may expire sooner."""

    account: PointsAccount
    soonest_expiry: datetime | None
    soonest_lot: PointsLot | None = None


def _held(session: Session) -> dict[int, Held]:
    """The accounts composed reads locked in this session's current transaction."""
    transaction = session.get_transaction()
    registry: tuple[Any, dict[int, Held]] | None = session.info.get("held_accounts")
    if registry is None or registry[0] is not transaction:
        registry = (transaction, {})
        session.info["held_accounts"] = registry
    return registry[1]


def hold(session: Session, held: Held) -> None:
    """Record an account that a composed read locked, with its member, in this transaction."""
    _held(session)[held.account.member_id] = held


def held_account(session: Session, member_id: int) -> Held | None:
    """The account a composed read locked in this transaction, if one did."""
    return _held(session).get(member_id)


def lock_account(session: Session, member_id: int) -> PointsAccount:
    """The member's account row, locked until the transaction ends (created on first use)."""
    held = held_account(session, member_id)
    if held is not None:
        return held.account
    account = _select_for_update(session, member_id)
    if account is None:
        _insert_account_if_missing(session, member_id)
        account = _select_for_update(session, member_id)
    if account is None:
        raise RuntimeError(f"points account of member {member_id} vanished")
    _refuse_merged(session, member_id)
    return account


def lock_accounts(session: Session, *member_ids: int) -> dict[int, PointsAccount]:
    """Several members' accounts, locked one by one in ascending member id."""
    return {member_id: lock_account(session, member_id) for member_id in sorted(set(member_ids))}


def _refuse_merged(session: Session, member_id: int) -> None:
    """A merge holds both accounts' locks until it commits: read after taking the lock,
    the member's row says whether it was merged meanwhile. Then the use case must start
    again (it will resolve the survivor) rather than credit a member nobody can reach."""
    merged_into = session.scalar(select(Member.merged_into_id).where(Member.id == member_id))
    if merged_into is not None:
        raise MergedMeanwhile(member_id, merged_into)


def _insert_account_if_missing(session: Session, member_id: int) -> None:
    """Create the account row unless a concurrent transaction has (or is about to).

    Not a plain INSERT caught on IntegrityError: on InnoDB the losers of that race each keep
    a shared lock on the winner's row, then all ask for the exclusive one (FOR UPDATE) and
    deadlock. A duplicate under ON DUPLICATE KEY UPDATE takes the exclusive lock at once, so
    the racers simply queue.
    """
    values = {"member_id": member_id, "balance": 0, "debt": 0}
    if session.get_bind().dialect.name == "mysql":
        upsert = mysql_insert(PointsAccount).values(**values)
        session.execute(upsert.on_duplicate_key_update(member_id=upsert.inserted.member_id))
    else:
        session.execute(sqlite_insert(PointsAccount).values(**values).on_conflict_do_nothing())


def _select_for_update(session: Session, member_id: int) -> PointsAccount | None:
    return session.scalars(
        select(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
