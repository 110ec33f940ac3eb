"""What the till's money paths read first: the member a store system names, locked with
their points account, and everything the common path needs, in one statement
(``app.orders.locks.lock_intake``).

An order or a till spend names its member by a reference (card, card QR, phone ...). The
intake finds them, locks their row and their account, and reads their tier row, the
soonest expiry of their open lots, their tier metric (orders) and the record of the
request's external id. An active member with an account then goes through the use case
without another read: the account is *held* (``app.points.locks.hold``), so the points
steps neither lock it again, nor check for a merge, nor look for expired lots they know
are not there. Anyone else (no such member yet, a merged member, no account yet) takes
the general path, which reads what it needs as it goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, ValidationFailed
from app.external_ids.replay import REQUEST_TABLE, Attempt, ExternalKey, Stored
from app.members import operations as members
from app.members import rules as member_rules
from app.members.models import Member, ReferenceKind
from app.orders import locks
from app.points import operations as points
from app.points.locks import Held, hold
from app.points.models import PointsEntry, PointsLot
from app.tiers.models import MemberTier
from app.writes import attach

CREATABLE_REFERENCES = (ReferenceKind.PHONE, ReferenceKind.UNIONID, ReferenceKind.CHANNEL_MEMBER_ID)


@dataclass(frozen=True)
class MemberRef:
    kind: ReferenceKind
    value: str


@dataclass(frozen=True)
class Intake:
    """The member the request is for (merges followed), read and locked."""

    member: Member
    tier_row: MemberTier | None  # meaningful only when ``held``
    metric: int | None  # the tier metric read with the intake (None: not read)
    held: bool  # the account is locked and held: the common path


def reference(ref: MemberRef, *, channel: str, secret: str | Sequence[str]) -> Any:
    try:
        return members.reference(kind=ref.kind, value=ref.value, channel=channel, secret=secret)
    except member_rules.QrInvalid:
        raise ValidationFailed(
            "The card QR code is not valid.", field="member.qr_payload"
        ) from None


def _refuse_expired(named: Any) -> None:
    if named.expired_qr is not None:
        raise Conflict("The card QR code has expired.", reason="qr_expired")


def _held(session: Session, row: Any, metric_read: bool) -> Intake | None:
    """The common path's intake, or None when the member needs the general path."""
    member, account = row.Member, row.PointsAccount
    if member.merged_into_id is not None or account is None:
        return None
    soonest = None
    if row.soonest_id is not None:
        columns = {"remaining": row.soonest_remaining, "expires_at": row.soonest_expiry}
        soonest = attach(session, PointsLot, {"id": row.soonest_id, **columns})
    hold(session, Held(account, row.soonest_expiry, soonest))
    metric = int(row.metric or 0) if metric_read else None
    return Intake(member, row.MemberTier, metric, held=True)


def for_order(
    session: Session,
    attempt: Attempt,
    ref: MemberRef,
    *,
    channel: str,
    secret: str | Sequence[str],
    metric: tuple[Callable[[], Any], dict[str, Any]] | None,
    metric_shape: str | None,
) -> Intake:
    """The order's member, its record replayed if the order was recorded before (raises
    ``Recorded``); a member known only by a phone, unionid or channel member id is created.
    ``metric``: the tier metric's subquery builder and its bounds (``tiers.metric_read``),
    read with the intake; ``metric_shape`` names it (the policy's metric)."""
    named = reference(ref, channel=channel, secret=secret)
    params = REQUEST_TABLE.params(attempt.key)
    if metric is not None:
        params |= metric[1]

    def reads() -> dict[str, Any]:
        return REQUEST_TABLE.reads() | ({"metric": metric[0]()} if metric is not None else {})

    shape = ("order", metric_shape)
    row = locks.lock_intake(session, member=named, reads=shape, build_reads=reads, params=params)
    if row is not None:
        attempt.replay(REQUEST_TABLE.read_back(row))
    else:
        attempt.replay(REQUEST_TABLE.find(session, attempt.key))
    _refuse_expired(named)
    held = _held(session, row, metric is not None) if row is not None else None
    if held is not None:
        return held
    owner = members.resolve(session, row.Member) if row is not None else None
    if owner is None:
        owner = _create_for(session, ref, channel)
    return Intake(owner, None, None, held=False)


def _create_for(session: Session, ref: MemberRef, channel: str) -> Member:
    if ref.kind not in CREATABLE_REFERENCES:
        raise NotFound("No member matches.", field=f"member.{ref.kind}")
    created = members.create_for_reference(session, kind=ref.kind, value=ref.value, channel=channel)
    points.grant_signup_bonus(session, created.id)
    return created


class LedgerRecord:
    """A till spend's record is its own ledger entry: the idempotency key names it, the
    entry keeps the request's fingerprint, and the answer is the entry's member and the
    balance it left (entries stay with their member through a merge)."""

    def __init__(self, ledger_key: str) -> None:
        self.ledger_key = ledger_key

    def params(self) -> dict[str, Any]:
        return {"ledger_key": self.ledger_key}

    @staticmethod
    def reads() -> dict[str, Any]:
        """The entry as scalar subqueries, for the intake's statement (``params`` binds
        its key)."""
        of_key = PointsEntry.idempotency_key == bindparam("ledger_key")
        return {
            f"entry_{name}": select(column).where(of_key).scalar_subquery()
            for name, column in (
                ("id", PointsEntry.id),
                ("fingerprint", PointsEntry.request_fingerprint),
                ("member_id", PointsEntry.member_id),
                ("balance_after", PointsEntry.balance_after),
            )
        }

    @staticmethod
    def read_back(row: Any) -> Stored | None:
        if row.entry_id is None:
            return None
        answer = {"member_id": row.entry_member_id, "balance": row.entry_balance_after}
        return Stored(row.entry_fingerprint, answer)

    def find(self, session: Session, key: ExternalKey) -> Stored | None:
        entry = points.entry_by_key(session, self.ledger_key)
        if entry is None:
            return None
        answer = {"member_id": entry.member_id, "balance": entry.balance_after}
        return Stored(entry.request_fingerprint, answer)

    def keep(self, session: Session, attempt: Attempt, answer: dict[str, Any]) -> None:
        """Nothing to add: the spend wrote the fingerprint on its entry."""


def for_till(
    session: Session,
    attempt: Attempt,
    record: LedgerRecord,
    ref: MemberRef,
    *,
    channel: str,
    secret: str | Sequence[str],
) -> Intake:
    """The spending member, the spend replayed if it was recorded before (raises
    ``Recorded``), even when the card QR code has expired since. The till never creates
    a member."""
    named = reference(ref, channel=channel, secret=secret)
    row = locks.lock_intake(
        session, member=named, reads="till", build_reads=record.reads, params=record.params()
    )
    if row is not None:
        attempt.replay(record.read_back(row))
    else:
        attempt.replay(record.find(session, attempt.key))
    _refuse_expired(named)
    held = _held(session, row, metric_read=False) if row is not None else None
    if held is not None:
        return held
    owner = members.resolve(session, row.Member) if row is not None else None
    if owner is None:
        raise NotFound("No member matches.", field=f"member.{ref.kind}")
    return Intake(owner, None, None, held=False)
