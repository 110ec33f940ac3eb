"""Changes to a member's points, inside the caller's transaction (flush, never commit).

Every change locks the member's account row first, so concurrent spends, earnings and
refunds of one member queue up and the balance, the lots and the ledger always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app import clock
from app.errors import IdempotencyMismatch, InsufficientPoints, ValidationFailed
from app.members import operations as members
from app.members.models import Member
from app.points import rules
from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.retry import RaceLost
from app.settings.operations import read_document

RULES_KEY = "points_rules"


class MergedMeanwhile(RaceLost):
    """The member was merged into another while this transaction worked on it; retry."""

    def __init__(self, member_id: int, survivor_id: int) -> None:
        super().__init__(f"member {member_id} was merged into {survivor_id}")
        self.survivor_id = survivor_id


def points_rules(session: Session) -> dict[str, Any]:
    return read_document(session, RULES_KEY, rules.DEFAULT_RULES)


def lock_account(session: Session, member_id: int) -> PointsAccount:
    """The member's account row, locked until the transaction ends (created on first use)."""
    account = _select_for_update(session, member_id)
    if account is None:
        _insert_account_if_missing(session, member_id)
        account = _select_for_update(session, member_id)
    if account is None:
        raise RuntimeError(f"points account of member {member_id} vanished")
    _refuse_merged(session, member_id)
    return account


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


def entry_by_key(session: Session, key: str) -> PointsEntry | None:
    return session.scalars(select(PointsEntry).where(PointsEntry.idempotency_key == key)).first()


def _write_entry(
    session: Session,
    account: PointsAccount,
    *,
    delta: int,
    kind: str,
    reason_code: str,
    note: str | None = None,
    order_id: int | None = None,
    idempotency_key: str | None = None,
) -> PointsEntry:
    account.balance += delta
    if account.balance < 0:
        raise AssertionError("a points balance may never go negative")
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
    )
    session.add(entry)
    session.flush()
    return entry


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
    _expire_locked(session, account, now)
    if expires_at is None:
        expires_at = rules.expiry_for(now, points_rules(session)["expiry"], clock.business_tz())
    entry = _write_entry(
        session,
        account,
        delta=points,
        kind=kind,
        reason_code=reason_code,
        note=note,
        order_id=order_id,
        idempotency_key=idempotency_key,
    )
    lot = PointsLot(
        member_id=member_id,
        entry_id=entry.id,
        order_id=order_id,
        points=points,
        remaining=points,
        earned_at=now,
        expires_at=expires_at,
    )
    session.add(lot)
    session.flush()
    entries = [entry]
    settled = min(account.debt, points)
    if settled:
        lot.remaining -= settled
        account.debt -= settled
        entries.append(
            _write_entry(
                session,
                account,
                delta=-settled,
                kind="reverse",
                reason_code="debt_settlement",
                note="settles points owed by an earlier refund",
                order_id=order_id,
            )
        )
    return EarnResult(entries, points - settled, settled)


def _merged_into(session: Session, former_id: int, member_id: int) -> bool:
    """Whether ``former_id`` was merged into ``member_id`` (a retry after a merge)."""
    survivor = members.resolve(session, session.get(Member, former_id))
    return survivor is not None and survivor.id == member_id and former_id != member_id


def grant_signup_bonus(session: Session, member_id: int) -> int:
    """The sign-up bonus of the points rules, once per member."""
    bonus = int(points_rules(session).get("signup_bonus", 0))
    key = f"signup:{member_id}"
    if bonus <= 0 or entry_by_key(session, key) is not None:
        return 0
    earn(session, member_id=member_id, points=bonus, reason_code="signup", idempotency_key=key)
    return bonus


def _consume(session: Session, lots: list[PointsLot], points: int) -> int:
    by_id = {lot.id: lot for lot in lots}
    taken, shortfall = rules.take_from_lots(
        [rules.LotView(lot.id, lot.remaining) for lot in lots], points
    )
    for lot_id, amount in taken:
        by_id[lot_id].remaining -= amount
    session.flush()
    return shortfall


def spend(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason_code: str,
    note: str | None = None,
    kind: str = "spend",
    idempotency_key: str | None = None,
) -> PointsEntry:
    """Take points from the lots that expire first; InsufficientPoints when short.

    With an ``idempotency_key`` already used, answers that first entry and changes nothing.
    """
    if points <= 0:
        raise ValidationFailed("points to spend must be positive", field="points")
    account = lock_account(session, member_id)
    if idempotency_key is not None:
        earlier = entry_by_key(session, idempotency_key)
        if earlier is not None:
            same_member = earlier.member_id == member_id or _merged_into(
                session, earlier.member_id, member_id
            )
            if not same_member or earlier.delta != -points:
                raise IdempotencyMismatch("This external_id was used for another redemption.")
            return earlier
    lots = _live_lots(session, account, clock.now())
    if account.balance < points:
        raise InsufficientPoints(balance=account.balance, requested=points)
    shortfall = _consume(session, lots, points)
    if shortfall:
        raise AssertionError("open lots disagree with the balance")
    return _write_entry(
        session,
        account,
        delta=-points,
        kind=kind,
        reason_code=reason_code,
        note=note,
        idempotency_key=idempotency_key,
    )


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
    lots = _live_lots(session, account, clock.now())
    if still_reversible is not None and order_id is not None:
        points = min(points, max(0, still_reversible - _expired_of_order(session, order_id)))
        if points == 0:
            return ReverseResult(None, 0, 0)
    takeable = min(points, account.balance)
    if takeable:
        own = [lot for lot in lots if order_id is not None and lot.order_id == order_id]
        left = _consume(session, own, takeable)
        left = _consume(session, lots, left) if left else 0
        if left:
            raise AssertionError("open lots disagree with the balance")
    debt = points - takeable
    account.debt += debt
    entry = None
    if takeable:
        entry = _write_entry(
            session,
            account,
            delta=-takeable,
            kind="reverse",
            reason_code="refund",
            note=note,
            order_id=order_id,
        )
    return ReverseResult(entry, takeable, debt)


def _expired_of_order(session: Session, order_id: int) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(PointsLot.expired), 0)).where(PointsLot.order_id == order_id)
    )
    return int(total or 0)


def adjust(session: Session, *, member_id: int, delta: int, note: str) -> PointsEntry:
    """An operator's correction: a positive one is a new lot, a negative one a spend. The
    member reads 积分调整; ``note`` (the stated reason) is for operators."""
    if delta == 0:
        raise ValidationFailed("delta must not be zero", field="delta")
    code = "adjustment"
    if delta > 0:
        result = earn(
            session, member_id=member_id, points=delta, reason_code=code, note=note, kind="adjust"
        )
        return result.entries[0]
    return spend(
        session, member_id=member_id, points=-delta, reason_code=code, note=note, kind="adjust"
    )


def locked_balance(session: Session, member_id: int) -> int:
    """The balance under the account's lock, after writing off what has expired: what a
    change made next in this transaction starts from."""
    account = lock_account(session, member_id)
    _expire_locked(session, account, clock.now())
    return account.balance


def expire_due(session: Session, *, member_id: int, now: datetime) -> PointsEntry | None:
    """Remove what is left of the member's lots that have expired by ``now``."""
    return _expire_locked(session, lock_account(session, member_id), now)


def _live_lots(session: Session, account: PointsAccount, now: datetime) -> list[PointsLot]:
    """The account's lots with points left, soonest expiry first, after writing off those
    already past their expiry: one read for both."""
    lots = list(
        session.scalars(
            select(PointsLot)
            .where(PointsLot.member_id == account.member_id, PointsLot.remaining > 0)
            .order_by(PointsLot.expires_at, PointsLot.id)
        )
    )
    _write_off(session, account, [lot for lot in lots if lot.expires_at <= now])
    return [lot for lot in lots if lot.expires_at > now]


def _expire_locked(session: Session, account: PointsAccount, now: datetime) -> PointsEntry | None:
    overdue = session.scalars(
        select(PointsLot).where(
            PointsLot.member_id == account.member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at <= now,
        )
    )
    return _write_off(session, account, list(overdue))


def _write_off(
    session: Session, account: PointsAccount, overdue: list[PointsLot]
) -> PointsEntry | None:
    """What is left of lots past their expiry leaves the balance as one `expire` entry."""
    total = sum(lot.remaining for lot in overdue)
    if total == 0:
        return None
    for lot in overdue:
        lot.expired += lot.remaining
        lot.remaining = 0
    return _write_entry(session, account, delta=-total, kind="expire", reason_code="expiry")


def move_points(session: Session, loser_id: int, survivor_id: int) -> dict[str, Any]:
    """Merge step: the loser's open lots and debt move to the survivor, each side's ledger
    records the transfer, so both still sum to their balances."""
    first, second = sorted((loser_id, survivor_id))
    accounts = {first: lock_account(session, first), second: lock_account(session, second)}
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
        _write_entry(session, loser, delta=-moved, kind="adjust", reason_code="merge", note=note)
        note = f"merged from member {loser_id}"
        _write_entry(session, survivor, delta=moved, kind="adjust", reason_code="merge", note=note)
    survivor.debt += loser.debt
    debt, loser.debt = loser.debt, 0
    session.flush()
    # A debt exists only at a zero balance: what one side owes, the other side's points pay.
    settled = _settle_debt_locked(session, survivor)
    return {"points": moved, "points_debt": debt, "points_debt_settled": settled}


def _settle_debt_locked(session: Session, account: PointsAccount) -> int:
    lots = _live_lots(session, account, clock.now())
    settled = min(account.debt, account.balance)
    if settled <= 0:
        return 0
    if _consume(session, lots, settled):
        raise AssertionError("open lots disagree with the balance")
    account.debt -= settled
    _write_entry(
        session,
        account,
        delta=-settled,
        kind="reverse",
        reason_code="debt_settlement",
        note="settles points owed by an earlier refund",
    )
    return settled
