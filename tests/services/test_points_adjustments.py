"""What operators change: a points adjustment is a ledger entry with a stated reason, never
below zero, audited with the balance the member could spend; the points rules document is in
force until replaced, and a replace is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AuditEntry
from app.errors import InsufficientPoints, ValidationFailed
from app.members.models import Member
from app.points import queries as points_queries
from app.points import rules, services
from app.points.rules import DEFAULT_RULES
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.settings import set_points_rules
from tests.support.books import assert_books_agree, books_of
from tests.support.clock import T0
from tests.support.points import OPERATOR, earn
from tests.support.rows import count_rows


@pytest.fixture
def member(session: Session, senders: None, frozen: Any) -> Member:
    """A member with no phone or other identity under the default rules (the package's
    ``member`` is the one the order tests find by each kind of reference)."""
    set_points_rules(session)
    return MemberFactory()


# --- operator adjustments ---


def test_an_adjustment_is_a_ledger_entry_and_is_audited(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 20)

    entry = services.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=80, reason="补偿：系统故障"
    )

    assert (entry.kind, entry.delta, entry.balance_after) == ("adjust", 80, 100)
    # The member reads 积分调整; the stated reason is for operators; no one is named.
    assert (entry.reason_code, entry.reason, entry.note) == (
        "adjustment",
        "积分调整",
        "补偿：系统故障",
    )
    books = assert_books_agree(session, member.id)
    assert books.lots[-1].points == 80  # a positive adjustment is a lot of its own
    (audit,) = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "points.adjust", AuditEntry.target_id == str(member.id)
        )
    )
    assert (audit.actor_type, audit.actor_id, audit.actor_name) == ("admin", 7, "ops-li")
    assert audit.target_type == "member"
    assert audit.before == {"balance": 20}
    assert audit.after == {"balance": 100, "delta": 80, "reason": "补偿：系统故障"}


def test_a_negative_adjustment_spends_and_cannot_go_below_zero(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 50)

    entry = services.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=-30, reason="duplicate credit"
    )
    assert (entry.kind, entry.balance_after) == ("adjust", 20)
    with pytest.raises(InsufficientPoints):
        services.adjust_points(
            uow=uow, actor=OPERATOR, member_id=member.id, delta=-21, reason="too much"
        )

    assert assert_books_agree(session, member.id).balance == 20
    assert count_rows(session, AuditEntry, AuditEntry.action == "points.adjust") == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_adjustment_requires_a_reason(
    uow: UnitOfWork, session: Session, member: Member, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.adjust_points(
            uow=uow, actor=OPERATOR, member_id=member.id, delta=10, reason=reason
        )

    assert caught.value.details.get("field") == "reason"
    assert books_of(session, member.id).entries == []
    assert count_rows(session, AuditEntry, AuditEntry.action == "points.adjust") == 0


def test_a_zero_adjustment_is_refused(uow: UnitOfWork, session: Session, member: Member) -> None:
    with pytest.raises(ValidationFailed):
        services.adjust_points(uow=uow, actor=OPERATOR, member_id=member.id, delta=0, reason="x")
    assert count_rows(session, AuditEntry, AuditEntry.action == "points.adjust") == 0


def test_an_adjustment_audits_the_balance_the_member_could_spend(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    """Points past their expiry are gone even before the job writes them off: the audit's
    before and after, and the entry's balance_after, agree with what the card shows."""
    earn(uow, member.id, 100, expires_at=T0 + timedelta(days=1))
    frozen.shift(timedelta(days=2))

    entry = services.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=10, reason="goodwill"
    )

    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "points.adjust")).one()
    assert audit.before == {"balance": 0}
    assert audit.after["balance"] == 10
    assert entry.balance_after == 10
    with uow:
        assert points_queries.balance_of(uow.session, member.id) == 10
    assert assert_books_agree(session, member.id).balance == 10


# --- the rules document ---


def test_the_default_rules_are_in_force_until_replaced_and_a_replace_is_audited(
    uow: UnitOfWork, session: Session
) -> None:
    assert services.get_points_rules(uow=uow) == DEFAULT_RULES
    document = DEFAULT_RULES | {"points_per_yuan": 2, "expiry": {"kind": "days", "days": 30}}

    answered = services.put_points_rules(
        uow=uow, actor=OPERATOR, rules=rules.parse_points_rules(document)
    )

    assert answered == document
    assert services.get_points_rules(uow=uow) == document
    (audit,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "points_rules.update"))
    assert (audit.actor_type, audit.actor_id, audit.actor_name) == ("admin", 7, "ops-li")
    assert (audit.target_type, audit.target_id) == ("settings", "points_rules")
    assert (audit.before, audit.after) == (DEFAULT_RULES, document)
