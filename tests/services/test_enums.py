"""The StrEnums keep the strings stored today and answer plain strings: in the database,
through marshmallow dumps and through Flask's JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from types import SimpleNamespace

import pytest
from flask import Flask, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin_api.audit import AuditEntryOut
from app.admins.models import ActorType, AuditEntry, Role
from app.admins.operations import Actor, record_change
from app.idempotency.models import RecordState
from app.members.models import Gender, MemberStatus, Provider, ReferenceKind
from app.ops.models import RunOutcome
from app.points.models import EntryKind, ReminderStatus
from app.points.rules import REASON_TEXTS, ExpiryKind, ReasonCode
from app.tiers.rules import Metric, WindowKind
from app.web.schemas import AdminLedgerEntrySchema

STORED: list[tuple[type[StrEnum], set[str]]] = [
    (EntryKind, {"earn", "spend", "expire", "adjust", "reverse"}),
    (ReminderStatus, {"pending", "sent", "skipped"}),
    (
        ReasonCode,
        {
            "order",
            "refund",
            "redemption",
            "checkin",
            "signup",
            "expiry",
            "adjustment",
            "merge",
            "debt_settlement",
        },
    ),
    (ExpiryKind, {"end_of_next_year", "days"}),
    (Role, {"admin", "operator", "analyst", "staff"}),
    (ActorType, {"admin", "cli", "system", "anonymous"}),
    (RecordState, {"pending", "done"}),
    (MemberStatus, {"active", "merged"}),
    (Gender, {"unknown", "male", "female"}),
    (Provider, {"wechat_mp", "wechat_oa", "wecom", "channel"}),
    (ReferenceKind, {"card_no", "phone", "unionid", "qr_payload", "channel_member_id"}),
    (Metric, {"spend_cents", "points_earned"}),
    (WindowKind, {"rolling_days", "calendar_year"}),
    (RunOutcome, {"running", "ok", "failed"}),
]


@pytest.mark.parametrize(("enum", "values"), STORED, ids=[e.__name__ for e, _ in STORED])
def test_values_are_the_strings_stored_today(enum: type[StrEnum], values: set[str]) -> None:
    assert {member.value for member in enum} == values


def test_every_reason_code_has_a_member_text() -> None:
    assert set(REASON_TEXTS) == set(ReasonCode)


def test_marshmallow_dumps_plain_strings() -> None:
    entry = SimpleNamespace(
        id=1,
        delta=-5,
        kind=EntryKind.ADJUST,
        reason_code=ReasonCode.ADJUSTMENT,
        reason=REASON_TEXTS[ReasonCode.ADJUSTMENT],
        balance_after=10,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        note=None,
    )
    dumped = AdminLedgerEntrySchema().dump(entry)
    assert (dumped["kind"], dumped["reason_code"]) == ("adjust", "adjustment")
    assert type(dumped["kind"]) is str and type(dumped["reason_code"]) is str


def test_flask_json_answers_the_value() -> None:
    with Flask(__name__).app_context():
        body = jsonify(kind=EntryKind.EARN, roles=[Role.ADMIN, Role.STAFF]).get_data(as_text=True)
    assert json.loads(body) == {"kind": "earn", "roles": ["admin", "staff"]}
    assert '"earn"' in body and "EntryKind" not in body


def test_stored_enum_reads_back_as_its_string(session: Session) -> None:
    record_change(
        session,
        actor=Actor(type=ActorType.CLI, name="cli"),
        action="tier.create",
        target_type="tier",
        target_id="gold",
        before=None,
        after={"role": Role.OPERATOR},
    )
    session.flush()
    session.expunge_all()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.target_id == "gold")).one()
    assert entry.actor_type == "cli" and type(entry.actor_type) is str
    assert entry.after == {"role": "operator"}
    dumped = AuditEntryOut().dump(entry)
    assert dumped["actor_type"] == "cli" and type(dumped["actor_type"]) is str
