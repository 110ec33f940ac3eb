"""Points use cases: the rules document, operator adjustments, the ledger, and the
expiry and reminder jobs (a transaction per batch, safe to rerun)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.admins.operations import Actor, record_change
from app.db import newest_first
from app.errors import NotFound, ValidationFailed
from app.members import operations as members
from app.outbox.events import Event, Topic
from app.points import operations as points
from app.points import queries
from app.points.models import ExpiryReminder, PointsEntry, PointsLot
from app.points.rules import DEFAULT_RULES, PointsRules
from app.settings.operations import replace_audited
from app.uow import UnitOfWork

BATCH_SIZE = 500


def get_points_rules(*, uow: UnitOfWork) -> dict[str, Any]:
    """The points rules document in force; a stored one that is not valid is refused."""
    with uow:
        return points.points_rules(uow.session).document()


def put_points_rules(*, uow: UnitOfWork, actor: Actor, rules: PointsRules) -> dict[str, Any]:
    """Replace the points rules; audited."""
    document = rules.document()
    with uow:
        session = uow.session
        replace_audited(
            session, actor=actor, key=points.RULES_KEY, default=DEFAULT_RULES, value=document
        )
        uow.commit()
        return document


def adjust_points(
    *, uow: UnitOfWork, actor: Actor, member_id: int, delta: int, reason: str
) -> PointsEntry:
    """An operator's correction, with a mandatory reason; audited."""
    if not reason.strip():
        raise ValidationFailed("A reason is required.", field="reason")
    return uow.run(_adjust, actor, member_id, delta, reason)


def _adjust(uow: UnitOfWork, actor: Actor, member_id: int, delta: int, reason: str) -> PointsEntry:
    member = members.get_active(uow.session, member_id)
    if member is None:
        raise NotFound("No such member.")
    # Read under the account's lock: concurrent adjustments each see the one before.
    before = points.locked_balance(uow.session, member.id)
    entry = points.adjust(uow.session, member_id=member.id, delta=delta, note=reason)
    record_change(
        uow.session,
        actor=actor,
        action="points.adjust",
        target_type="member",
        target_id=member.id,
        before={"balance": before},
        after={"balance": entry.balance_after, "delta": delta, "reason": reason},
    )
    payload = {
        "member_id": member.id,
        "entry_id": entry.id,
        "delta": delta,
        "balance_after": entry.balance_after,
        "reason": reason,
    }
    uow.emit(Event(Topic.POINTS_ADJUSTED, payload, member_id=member.id))
    return entry


def list_ledger(
    *, uow: UnitOfWork, member_id: int, before_id: int | None, limit: int
) -> list[PointsEntry]:
    """The member's entries, newest first."""
    with uow:
        member = members.get_active(uow.session, member_id)
        if member is None:
            raise NotFound("No such member.")
        query = select(PointsEntry).where(PointsEntry.member_id == member.id)
        page = newest_first(query, PointsEntry.id, before_id=before_id, limit=limit)
        return list(uow.session.scalars(page))


def expire_points(*, uow: UnitOfWork, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Write off what is left of every lot past its expiry; one transaction per batch of
    members. Rerunning finds nothing more to do."""
    now = clock.now()
    after, members_done, expired = 0, 0, 0
    while True:
        with uow:
            batch = queries.members_with_expired_lots(
                uow.session, now=now, after_member_id=after, limit=batch_size
            )
            if not batch:
                return {"members": members_done, "points": expired}
            for member_id in batch:
                entry = points.expire_due(uow.session, member_id=member_id, now=now)
                expired += -entry.delta if entry else 0
            uow.commit()
        members_done += len(batch)
        after = batch[-1]


def remind_expiring(*, uow: UnitOfWork, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Record, once per member and expiry instant, points that expire within
    ``reminder_days_before``, each with a ``points.expiring`` event in the same
    transaction: the outbox drain hands it to the messaging handler. Batches of members."""
    now = clock.now()
    recorded, after = 0, 0
    while True:
        with uow:
            days = points.points_rules(uow.session).reminder_days_before
            due = (
                PointsLot.remaining > 0,
                PointsLot.expires_at > now,
                PointsLot.expires_at <= now + timedelta(days=days),
            )
            batch = list(
                uow.session.scalars(
                    select(PointsLot.member_id)
                    .where(*due, PointsLot.member_id > after)
                    .group_by(PointsLot.member_id)
                    .order_by(PointsLot.member_id)
                    .limit(batch_size)
                )
            )
            if not batch:
                return {"recorded": recorded}
            rows = uow.session.execute(
                select(PointsLot.member_id, PointsLot.expires_at, func.sum(PointsLot.remaining))
                .where(*due, PointsLot.member_id.in_(batch))
                .group_by(PointsLot.member_id, PointsLot.expires_at)
            ).all()
            recorded += _record_reminders(uow, rows)
            uow.commit()
        after = batch[-1]


def _record_reminders(uow: UnitOfWork, rows: Sequence[Any]) -> int:
    existing = {
        (m, e.replace(microsecond=0))
        for m, e in uow.session.execute(
            select(ExpiryReminder.member_id, ExpiryReminder.expires_at).where(
                ExpiryReminder.member_id.in_({row[0] for row in rows})
            )
        ).all()
    }
    added = 0
    for member_id, expires_at, total in rows:
        if (member_id, expires_at.replace(microsecond=0)) in existing:
            continue
        reminder = ExpiryReminder(member_id=member_id, expires_at=expires_at, points=int(total))
        try:
            with uow.session.begin_nested():
                uow.session.add(reminder)
        except IntegrityError:  # a concurrent run recorded it
            continue
        uow.emit(_expiring(reminder))
        added += 1
    return added


def _expiring(reminder: ExpiryReminder) -> Event:
    """The notice is sent by the messaging handler when the outbox drains."""
    payload = {
        "reminder_id": reminder.id,
        "member_id": reminder.member_id,
        "points": reminder.points,
        "expires_at": reminder.expires_at.isoformat(),
    }
    return Event(Topic.POINTS_EXPIRING, payload, member_id=reminder.member_id)
