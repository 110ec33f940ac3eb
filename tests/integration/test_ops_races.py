"""Races of issue 6 on MariaDB, through HTTP: many members binding one phone at once,
operator adjustments of one member at once, and the tier simulation run twice at once."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from app.members.models import Member, MemberMerge
from tests.api.conftest import committing_app  # noqa: F401 - the fixture these tests use
from tests.helpers import bearer, log_in, phone_code
from tests.integration.test_concurrency import assert_ledger_agrees, race

pytestmark = pytest.mark.mariadb


def test_sixteen_members_binding_one_phone_at_once_merge_into_one(
    committing_app, sim, engine  # noqa: F811 - the imported fixture
):
    live = committing_app
    setup = live.test_client()
    phone = "13966660000"
    members = [log_in(setup, sim, f"o-race-bind-{i}") for i in range(16)]
    codes = [phone_code(sim, phone) for _ in members]

    answers = race(
        live,
        len(members),
        lambda client, i: client.post(
            "/mp/v1/auth/phone",
            json={"code": codes[i]},
            headers=bearer(members[i]["token"]),
        ),
    )

    assert Counter(status for status, _ in answers) == {200: len(members)}, answers
    ids = [m["member"]["id"] for m in members]
    with engine.connect() as connection:
        holders = connection.execute(select(Member.id).where(Member.phone == phone)).all()
        rows = connection.execute(
            select(Member.id, Member.status, Member.merged_into_id).where(Member.id.in_(ids))
        ).all()
        merges = connection.execute(
            select(MemberMerge.from_member_id).where(MemberMerge.from_member_id.in_(ids))
        ).all()
    assert len(holders) == 1
    (survivor,) = (row.id for row in holders)
    active = [row.id for row in rows if row.status == "active"]
    assert active == [survivor]
    # Each loser merged once, and every answer names the one survivor.
    assert sorted(row.from_member_id for row in merges) == sorted(set(ids) - {survivor})
    assert {body["id"] for _, body in answers} == {survivor}
    ledger = assert_ledger_agrees(engine, survivor)
    for member_id in set(ids) - {survivor}:
        assert assert_ledger_agrees(engine, member_id)["balance"] == 0
    assert ledger["balance"] >= 0
