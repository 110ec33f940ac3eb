"""Daily check-in: one per business day in Asia/Shanghai, with a streak and its bonus."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.checkins import services as checkins
from app.checkins.models import Checkin
from app.errors import LimitReached, Unauthorized
from app.members import operations as member_ops
from app.members.models import Member
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.settings import set_points_rules
from tests.support.books import assert_books_agree
from tests.support.rows import count_rows

# 23:59 and 00:01 in Beijing, on one UTC day (1 June 2025)
BEFORE_MIDNIGHT = datetime(2025, 6, 1, 15, 59, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2025, 6, 1, 16, 1, tzinfo=UTC)


@pytest.fixture
def member(session: Session) -> Member:
    set_points_rules(session, checkin={"base": 5, "streak_bonus": {"7": 20}})
    return MemberFactory()


def check_in_at(uow: UnitOfWork, member_id: int, moment: datetime) -> checkins.CheckinResult:
    with time_machine.travel(moment, tick=False):
        return checkins.check_in(uow=uow, member_id=member_id)


def days_of(session: Session, member_id: int) -> list[tuple[date, int, int]]:
    session.expire_all()
    rows = session.scalars(
        select(Checkin).where(Checkin.member_id == member_id).order_by(Checkin.day)
    )
    return [(row.day, row.streak, row.points) for row in rows]


def test_2359_and_0001_beijing_time_are_two_days_and_a_streak_of_two(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    first = check_in_at(uow, member.id, BEFORE_MIDNIGHT)
    second = check_in_at(uow, member.id, AFTER_MIDNIGHT)

    assert (first.streak, first.points) == (1, 5)
    assert (second.streak, second.points) == (2, 5)
    assert days_of(session, member.id) == [(date(2025, 6, 1), 1, 5), (date(2025, 6, 2), 2, 5)]


def test_twice_on_one_business_day_is_limit_reached(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    # 00:01 and 23:59 of 2 June in Beijing fall on two different UTC days
    check_in_at(uow, member.id, AFTER_MIDNIGHT)

    with pytest.raises(LimitReached) as caught:
        check_in_at(uow, member.id, datetime(2025, 6, 2, 15, 59, tzinfo=UTC))

    assert (caught.value.code, caught.value.status) == ("limit_reached", 409)
    assert caught.value.details == {"day": "2025-06-02"}
    assert count_rows(session, Checkin, Checkin.member_id == member.id) == 1
    books = assert_books_agree(session, member.id)
    assert books.balance == 5
    assert len(books.entries) == 1


def test_a_gap_resets_the_streak(uow: UnitOfWork, session: Session, member: Member) -> None:
    start = datetime(2025, 6, 1, 2, tzinfo=UTC)
    streaks = [
        check_in_at(uow, member.id, start + timedelta(days=offset)).streak
        for offset in (0, 1, 2, 4, 5)
    ]

    assert streaks == [1, 2, 3, 1, 2]
    assert [day for day, _, _ in days_of(session, member.id)] == [
        date(2025, 6, 1),
        date(2025, 6, 2),
        date(2025, 6, 3),
        date(2025, 6, 5),
        date(2025, 6, 6),
    ]


def test_day_seven_of_a_streak_earns_the_base_and_the_streak_bonus(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    start = datetime(2025, 6, 1, 23, 30, tzinfo=UTC)  # 07:30 in Beijing
    awards = [
        check_in_at(uow, member.id, start + timedelta(days=offset)).points for offset in range(8)
    ]

    assert awards == [5, 5, 5, 5, 5, 5, 25, 5]
    assert assert_books_agree(session, member.id).balance == 60


def test_check_in_points_land_in_the_ledger_as_a_lot(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    check_in_at(uow, member.id, BEFORE_MIDNIGHT)
    check_in_at(uow, member.id, AFTER_MIDNIGHT)

    books = assert_books_agree(session, member.id)
    assert [(e.kind, e.delta, e.reason_code, e.reason, e.note) for e in books.entries] == [
        ("earn", 5, "checkin", "每日签到", "check-in 2025-06-01 (day 1)"),
        ("earn", 5, "checkin", "每日签到", "check-in 2025-06-02 (day 2)"),
    ]
    assert [e.balance_after for e in books.entries] == [5, 10]
    assert [(lot.points, lot.remaining) for lot in books.lots] == [(5, 5), (5, 5)]
    assert books.lots[0].expires_at == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_the_rules_decide_the_base_and_the_bonus_days(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    set_points_rules(session, checkin={"base": 2, "streak_bonus": {"2": 3, "3": 10}})
    start = datetime(2025, 6, 1, 2, tzinfo=UTC)

    awards = [
        check_in_at(uow, member.id, start + timedelta(days=offset)).points for offset in range(4)
    ]

    assert awards == [2, 5, 12, 2]


def test_a_check_in_worth_nothing_is_recorded_without_a_ledger_entry(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    set_points_rules(session, checkin={"base": 0, "streak_bonus": {}})

    result = check_in_at(uow, member.id, BEFORE_MIDNIGHT)

    assert (result.points, result.streak) == (0, 1)
    assert days_of(session, member.id) == [(date(2025, 6, 1), 1, 0)]
    assert assert_books_agree(session, member.id).entries == []


def test_a_merged_members_check_in_goes_to_the_survivor(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    survivor = MemberFactory()
    check_in_at(uow, survivor.id, BEFORE_MIDNIGHT)
    with uow:
        loser = uow.session.get(Member, member.id)
        kept = uow.session.get(Member, survivor.id)
        assert loser is not None and kept is not None
        member_ops.merge_members(uow.session, loser=loser, survivor=kept, reason="test")
        uow.commit()

    result = check_in_at(uow, member.id, AFTER_MIDNIGHT)

    assert result.streak == 2  # the survivor's streak continues
    assert [day for day, _, _ in days_of(session, survivor.id)] == [
        date(2025, 6, 1),
        date(2025, 6, 2),
    ]
    assert assert_books_agree(session, survivor.id).balance == 10
    assert assert_books_agree(session, member.id).balance == 0


def test_an_unknown_member_cannot_check_in(uow: UnitOfWork, session: Session) -> None:
    with pytest.raises(Unauthorized):
        check_in_at(uow, 987_654_321, BEFORE_MIDNIGHT)
    assert count_rows(session, Checkin) == 0
