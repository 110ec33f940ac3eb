"""Spending: points taken from the lots that expire first; operators' corrections."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import clock
from app.errors import IdempotencyMismatch, InsufficientPoints, ValidationFailed
from app.members import operations as members
from app.members.models import Member
from app.points.locks import lock_account
from app.points.models import PointsEntry
from app.points.operations.earning import earn
from app.points.operations.ledger import entry_by_key, write_entry
from app.points.operations.lots import consume, expire_overdue, lots_covering


def _merged_into(session: Session, former_id: int, member_id: int) -> bool:
    """Whether ``former_id`` was merged into ``member_id`` (a retry after a merge)."""
    survivor = members.resolve(session, session.get(Member, former_id))
    return survivor is not None and survivor.id == member_id and former_id != member_id


def spend(
    session: Session,
    *,
    member_id: int,
    points: int,
    reason_code: str,
    note: str | None = None,
    kind: str = "spend",
    idempotency_key: str | None = None,
    key_is_new: bool = False,
    request_fingerprint: str | None = None,
) -> PointsEntry:
    """Take points from the lots that expire first; InsufficientPoints when short.

    With an ``idempotency_key`` already used, answers that first entry and changes nothing
    (``key_is_new``: the caller read under the account's lock that no entry has it).
    """
    if points <= 0:
        raise ValidationFailed("points to spend must be positive", field="points")
    account = lock_account(session, member_id)
    if idempotency_key is not None and not key_is_new:
        earlier = entry_by_key(session, idempotency_key)
        if earlier is not None:
            same_member = earlier.member_id == member_id or _merged_into(
                session, earlier.member_id, member_id
            )
            if not same_member or earlier.delta != -points:
                raise IdempotencyMismatch("This external_id was used for another redemption.")
            return earlier
    now = clock.now()
    expire_overdue(session, account, now)  # the balance is what the member can spend now
    if account.balance < points:
        raise InsufficientPoints(balance=account.balance, requested=points)
    shortfall = consume(session, lots_covering(session, account, points, now), points)
    if shortfall:
        raise AssertionError("open lots disagree with the balance")
    return write_entry(
        session,
        account,
        delta=-points,
        kind=kind,
        reason_code=reason_code,
        note=note,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
    )


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
