"""The points rules and tier policy are read as typed values, once per use case; a stored
document its schema refuses stops the use case with an error naming the document."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from app.admins.operations import SYSTEM
from app.checkins import services as checkins
from app.checkins.models import Checkin
from app.points import operations as points
from app.points import rules as points_rules
from app.points import services as points_services
from app.settings.documents import InvalidSettingsDocument
from app.settings.models import SettingsDocument
from app.settings.operations import replace_document
from app.tiers import operations as tier_ops
from app.tiers import rules as tier_rules
from app.tiers import services as tier_services
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.settings import set_points_rules, set_tier_policy
from tests.support.rows import count_rows


def test_a_stored_points_rules_document_that_is_not_valid_stops_the_use_case(
    uow: UnitOfWork, session: Session
) -> None:
    set_points_rules(session, checkin={"base": "5", "streak_bonus": {}})
    member = MemberFactory()

    with pytest.raises(InvalidSettingsDocument, match=r"'points_rules' is not valid.*base"):
        checkins.check_in(uow=uow, member_id=member.id)
    with pytest.raises(InvalidSettingsDocument, match="points_rules"):
        points_services.get_points_rules(uow=uow)

    assert count_rows(session, Checkin) == 0


def test_a_stored_tier_policy_that_is_not_valid_is_refused(
    uow: UnitOfWork, session: Session
) -> None:
    set_tier_policy(session, window={"kind": "rolling_days"})

    with pytest.raises(InvalidSettingsDocument, match=r"'tier_policy' is not valid.*window"):
        tier_services.get_policy(uow=uow)


def test_the_rules_are_parsed_once_per_use_case_and_again_after_a_replace(
    session: Session,
) -> None:
    set_points_rules(session, signup_bonus=10)

    first = points.points_rules(session)
    assert first.signup_bonus == 10
    assert points.points_rules(session) is first

    changed = points_rules.DEFAULT_RULES | {"signup_bonus": 7}
    replace_document(session, points.RULES_KEY, changed)

    assert points.points_rules(session).signup_bonus == 7


def test_what_is_put_is_stored_and_answered_as_the_document(
    uow: UnitOfWork, session: Session
) -> None:
    document = {
        "points_per_yuan": 3,
        "signup_bonus": 50,
        "birthday_month_multiplier_pct": 150,
        "checkin": {"base": 2, "streak_bonus": {"30": 100, "7": 20}},
        "expiry": {"kind": "days", "days": 90},
        "reminder_days_before": 0,
    }
    typed = points_rules.parse_points_rules(document)
    assert typed.checkin.streak_bonus == ((30, 100), (7, 20))

    answered = points_services.put_points_rules(uow=uow, actor=SYSTEM, rules=typed)

    assert json.dumps(answered) == json.dumps(document)
    assert json.dumps(points_services.get_points_rules(uow=uow)) == json.dumps(document)
    session.expire_all()
    stored = session.get(SettingsDocument, points.RULES_KEY)
    assert stored is not None
    assert json.dumps(stored.value) == json.dumps(document)


def test_the_tier_policy_put_is_read_back_typed(uow: UnitOfWork, session: Session) -> None:
    document = {"metric": "points_earned", "window": {"kind": "calendar_year"}, "retention_days": 0}

    tier_services.put_policy(uow=uow, actor=SYSTEM, policy=tier_rules.parse_tier_policy(document))

    assert tier_ops.tier_policy(session) == tier_rules.TierPolicy(
        metric=tier_rules.Metric.POINTS_EARNED,
        window=tier_rules.Window(tier_rules.WindowKind.CALENDAR_YEAR),
        retention_days=0,
    )
    assert tier_services.get_policy(uow=uow) == document
