"""Check in once a business day; the streak counts consecutive days in TIMEZONE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.checkins.models import Checkin
from app.errors import LimitReached, Unauthorized
from app.members import operations as members
from app.points import operations as points
from app.points import rules
from app.uow import UnitOfWork


@dataclass(frozen=True)
class CheckinResult:
    points: int
    streak: int


def check_in(*, uow: UnitOfWork, member_id: int) -> CheckinResult:
    """One check-in per member and business day (409 limit_reached for a second)."""
    today = clock.today()
    try:
        return uow.run(_check_in, member_id, today)
    except IntegrityError:
        raise LimitReached("Already checked in today.", day=today.isoformat()) from None


def _check_in(uow: UnitOfWork, member_id: int, today: date) -> CheckinResult:
    session = uow.session
    member = members.get_active(session, member_id)
    if member is None:
        raise Unauthorized("This member no longer exists.")
    owner_id = member.id  # a merged member's token checks in the survivor
    points.lock_account(session, owner_id)  # queues a member's concurrent check-ins
    if session.scalars(
        select(Checkin.id).where(Checkin.member_id == owner_id, Checkin.day == today)
    ).first():
        raise LimitReached("Already checked in today.", day=today.isoformat())
    yesterday = session.scalars(
        select(Checkin).where(
            Checkin.member_id == owner_id, Checkin.day == today - timedelta(days=1)
        )
    ).first()
    streak = yesterday.streak + 1 if yesterday else 1
    award = rules.checkin_points(points.points_rules(session).checkin, streak)
    session.add(Checkin(member_id=owner_id, day=today, streak=streak, points=award))
    session.flush()
    if award > 0:
        points.earn(
            session,
            member_id=owner_id,
            points=award,
            reason_code="checkin",
            note=f"check-in {today.isoformat()} (day {streak})",
            idempotency_key=f"checkin:{owner_id}:{today.isoformat()}",
        )
    return CheckinResult(points=award, streak=streak)
