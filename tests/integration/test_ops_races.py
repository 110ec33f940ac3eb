"""Races of issue 6 on MariaDB, through HTTP: many members binding one phone at once,
operator adjustments of one member at once, and the tier simulation run twice at once."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.members.models import Member, MemberMerge
from tests.integration.test_concurrency import assert_ledger_agrees, race
from tests.support.http import bearer, log_in
from tests.support.wechat import phone_code

pytestmark = pytest.mark.mariadb


@pytest.fixture
def live(committing_app) -> Any:
    return committing_app


def test_sixteen_members_binding_one_phone_at_once_merge_into_one(
    live,
    sim,
    engine,
):
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


STRONG_PASSWORD = "Tangerine-Lantern-Harbour-47"


def committed_admin_token(app, username: str, role: str) -> str:
    from app.admins.operations import CLI
    from app.admins.services import create_admin

    deps = app.extensions["huiyuan"]
    create_admin(uow=deps.uow(), actor=CLI, username=username, password=STRONG_PASSWORD, role=role)
    answer = app.test_client().post(
        "/admin/v1/auth/login", json={"username": username, "password": STRONG_PASSWORD}
    )
    assert answer.status_code == 200, answer.get_json()
    return str(answer.get_json()["token"])


def test_two_tier_simulations_at_once_run_one_at_a_time(
    live,
    engine,
    redis,
):
    """The first simulation is held inside MariaDB (its table locked by another session)
    while the second one arrives: that one is 409 already_running, the first then ends."""
    from app.tiers.services import SIMULATION_LOCK

    headers = bearer(committed_admin_token(live, "sim-analyst", "analyst"))
    simulate = "/admin/v1/tiers/simulate"

    def call() -> Any:
        return live.test_client().post(simulate, json={"thresholds": {}}, headers=headers)

    with engine.connect() as blocker, ThreadPoolExecutor(max_workers=2) as pool:
        blocker.execute(text("LOCK TABLES members WRITE"))
        try:
            first = pool.submit(call)
            deadline = time.monotonic() + 10
            while not redis.exists(SIMULATION_LOCK) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert redis.exists(SIMULATION_LOCK), "the first simulation never started"
            assert not first.done()
            # Were it not refused, it would wait on the locked table like the first one.
            second = pool.submit(call).result(timeout=5)
            assert second.status_code == 409, second.get_json()
            assert second.get_json()["error"]["code"] == "already_running"
        finally:
            blocker.execute(text("UNLOCK TABLES"))
        answered = first.result(timeout=30)
    assert answered.status_code == 200, answered.get_json()
    assert "distribution" in answered.get_json()
    assert not redis.exists(SIMULATION_LOCK)
    third = live.test_client().post(simulate, json={"thresholds": {}}, headers=headers)
    assert third.status_code == 200, third.get_json()


def test_concurrent_adjustments_audit_the_balance_each_one_saw_under_the_lock(live, sim, engine):
    """Twelve operators' adjustments of one member at once: each audit entry's before is
    the balance its own adjustment started from (a chain 0, 10, 20 ...), and the member's
    history shows 积分调整 without anyone's name or note."""
    from app.admins.models import AuditEntry

    setup = live.test_client()
    member = log_in(setup, sim, "o-race-adjust")
    member_id = member["member"]["id"]
    operator = "ops-race-adjuster"
    headers = bearer(committed_admin_token(live, operator, "operator"))
    url = f"/admin/v1/members/{member_id}/points-adjustments"

    answers = race(
        live,
        12,
        lambda client, i: client.post(
            url, json={"delta": 10, "reason": f"goodwill ticket {i}"}, headers=headers
        ),
    )

    assert [status for status, _ in answers] == [201] * 12, answers
    with engine.connect() as connection:
        logged = connection.execute(
            select(AuditEntry.actor_name, AuditEntry.before, AuditEntry.after).where(
                AuditEntry.action == "points.adjust", AuditEntry.target_id == str(member_id)
            )
        ).all()
    assert {row.actor_name for row in logged} == {operator}
    chain = sorted((row.before["balance"], row.after["balance"]) for row in logged)
    assert chain == [(10 * i, 10 * i + 10) for i in range(12)]
    assert assert_ledger_agrees(engine, member_id)["balance"] == 120

    history = setup.get(
        "/mp/v1/points/ledger?limit=100", headers=bearer(member["token"])
    ).get_json()["items"]
    adjustments = [entry for entry in history if entry["kind"] == "adjust"]
    assert len(adjustments) == 12
    assert {(e["reason_code"], e["reason"]) for e in adjustments} == {("adjustment", "积分调整")}
    assert operator not in str(history) and "goodwill" not in str(history)


def test_a_burst_of_parallel_guesses_gets_no_more_than_the_account_limit(live, engine):
    """Twelve wrong passwords for one account at once: five are checked (401, audited),
    seven are 429 rate_limited with Retry-After; the count is atomic in Redis."""
    from app.admins.models import AuditEntry

    committed_admin_token(live, "ops-burst", "operator")

    answers = []

    def guess(client: Any, _: int) -> Any:
        response = client.post(
            "/admin/v1/auth/login", json={"username": "ops-burst", "password": "wrong guess"}
        )
        answers.append(response.headers.get("Retry-After"))
        return response

    statuses = race(live, 12, guess)

    assert Counter(status for status, _ in statuses) == {401: 5, 429: 7}, statuses
    assert {body["error"]["code"] for status, body in statuses if status == 429} == {"rate_limited"}
    waits = [int(value) for value in answers if value is not None]
    assert len(waits) == 7 and all(1 <= wait <= 60 for wait in waits)
    with engine.connect() as connection:
        failed = connection.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "admin.login_failed")
        )
    assert failed == 5
