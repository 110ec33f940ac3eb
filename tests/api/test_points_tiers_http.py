"""Points and tiers over HTTP, held to the contract: the member's ledger and daily check-in;
the admin's points rules, adjustments, tier ladder, tier policy and the tier simulation.

Each endpoint has one success test checking the whole answer, then its authorisation, the
validation only the HTTP layer does, and the status each domain error maps to. What the
points and tiers do (arithmetic, expiry, streaks, upgrades, the simulation's counts, the
audit trail) is tested against the services: tests/services/test_points_ledger.py,
test_checkins.py and test_tiers.py."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from app.points.rules import DEFAULT_RULES
from app.tiers import services as tier_services
from app.tiers.rules import DEFAULT_POLICY
from tests.factories.tiers import TierFactory
from tests.support.http import assert_envelope, bearer
from tests.support.signing import open_post

# 10:00 on 4 May 2026 in Shanghai.
T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)
T0_LOCAL = "2026-05-04T10:00:00+08:00"
LEDGER = "/mp/v1/points/ledger"
CHECKINS = "/mp/v1/checkins"
RULES = "/admin/v1/points-rules"
TIERS = "/admin/v1/tiers"
POLICY = "/admin/v1/tier-policy"
SIMULATE = "/admin/v1/tiers/simulate"
AUDIT = "/admin/v1/audit-log"
LEDGER_FIELDS = {"id", "delta", "kind", "reason_code", "reason", "balance_after", "created_at"}
RULES_DOC: dict[str, Any] = {
    "points_per_yuan": 2,
    "signup_bonus": 0,
    "birthday_month_multiplier_pct": 200,
    "checkin": {"base": 3, "streak_bonus": {"3": 10}},
    "expiry": {"kind": "days", "days": 30},
    "reminder_days_before": 7,
}
SILVER = {"code": "silver", "name": "银卡", "rank": 1, "threshold": 0, "benefits": {}}
GOLD = {
    "code": "gold",
    "name": "金卡",
    "rank": 2,
    "threshold": 100_000,
    "benefits": {"points_multiplier_pct": 150, "discount_pct": 5},
}


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def member(frozen, login) -> dict[str, Any]:
    return login("o-points")


@pytest.fixture
def me(member) -> dict[str, str]:
    return bearer(member["token"])


@pytest.fixture
def member_id(member) -> int:
    return int(member["member"]["id"])


@pytest.fixture
def operator(frozen, admin_token) -> dict[str, str]:
    return bearer(admin_token("operator"))


@pytest.fixture
def analyst(frozen, admin_token) -> dict[str, str]:
    return bearer(admin_token("analyst"))


@pytest.fixture
def admin(frozen, admin_token) -> dict[str, str]:
    return bearer(admin_token("admin"))


def order(client, partner, who: dict[str, Any], external_id: str, amount_cents: int) -> Any:
    answer = open_post(
        client,
        partner,
        "/open/v1/orders",
        {
            "channel": "pos",
            "external_id": external_id,
            "member": who,
            "paid_at": "2026-05-04T09:30:00+08:00",
            "amount_cents": amount_cents,
            "items": [{"sku": "S1", "name": "Tea", "quantity": 1, "amount_cents": amount_cents}],
        },
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def ledger(client, headers, **query: Any) -> Any:
    return client.get(LEDGER, headers=headers, query_string=query)


def audit(client, admin_headers, target_type: str) -> list[dict[str, Any]]:
    answer = client.get(AUDIT, headers=admin_headers, query_string={"target_type": target_type})
    assert answer.status_code == 200, answer.get_json()
    return list(answer.get_json()["items"])


def fields_of(response) -> dict[str, Any]:
    return dict(assert_envelope(response, 422, "validation_error")["details"]["fields"])


class TestLedger:
    @pytest.fixture
    def history(self, client, partner, member, me, operator, member_id) -> None:
        """Three entries: an order (100 points), a check-in (5) and an adjustment (+15)."""
        order(client, partner, {"card_no": member["member"]["card_no"]}, "pos-a", 10_000)
        assert client.post(CHECKINS, headers=me).status_code == 200
        adjusted = client.post(
            f"/admin/v1/members/{member_id}/points-adjustments",
            json={"delta": 15, "reason": "goodwill"},
            headers=operator,
        )
        assert adjusted.status_code == 201, adjusted.get_json()

    def test_answers_the_members_entries_newest_first_without_the_operators_note(
        self, client, me, history
    ):
        answer = ledger(client, me)

        assert answer.status_code == 200
        body = answer.get_json()
        assert set(body) == {"items", "next_cursor"}
        assert body["next_cursor"] is None
        items = body["items"]
        assert all(set(entry) == LEDGER_FIELDS for entry in items)
        assert all(isinstance(entry["id"], int) for entry in items)
        assert [{k: v for k, v in entry.items() if k != "id"} for entry in items] == [
            {
                "delta": 15,
                "kind": "adjust",
                "reason_code": "adjustment",
                "reason": "积分调整",
                "balance_after": 120,
                "created_at": T0_LOCAL,
            },
            {
                "delta": 5,
                "kind": "earn",
                "reason_code": "checkin",
                "reason": "每日签到",
                "balance_after": 105,
                "created_at": T0_LOCAL,
            },
            {
                "delta": 100,
                "kind": "earn",
                "reason_code": "order",
                "reason": "订单积分",
                "balance_after": 100,
                "created_at": T0_LOCAL,
            },
        ]
        # The adjustment's stated reason is for operators only.
        assert "goodwill" not in answer.get_data(as_text=True)

    def test_pages_follow_the_cursor_without_gaps_or_repeats(self, client, me, history):
        first = ledger(client, me, limit=2).get_json()
        assert len(first["items"]) == 2
        assert first["next_cursor"]
        second = ledger(client, me, limit=2, cursor=first["next_cursor"]).get_json()
        assert second["next_cursor"] is None
        whole = ledger(client, me).get_json()["items"]
        assert first["items"] + second["items"] == whole
        assert [e["reason_code"] for e in second["items"]] == ["order"]

    def test_an_exact_last_page_has_no_next_cursor(self, client, me, history):
        page = ledger(client, me, limit=3).get_json()
        assert len(page["items"]) == 3
        assert page["next_cursor"] is None
        shorter = ledger(client, me, limit=2).get_json()
        rest = ledger(client, me, cursor=shorter["next_cursor"]).get_json()
        assert rest == {"items": page["items"][2:], "next_cursor": None}

    @pytest.mark.parametrize(
        "query",
        [
            {"limit": 0},
            {"limit": 101},
            {"limit": "ten"},
            {"cursor": "not-a-cursor"},
            {"cursor": base64.urlsafe_b64encode(b"v2:5").decode()},
        ],
        ids=["zero", "101", "text", "garbage", "other-version"],
    )
    def test_bad_paging_is_422(self, client, me, query):
        assert_envelope(ledger(client, me, **query), 422, "validation_error")

    def test_a_member_sees_only_their_own_entries(self, client, partner, login, member, me):
        other = login("o-points-other")
        order(client, partner, {"card_no": other["member"]["card_no"]}, "pos-o", 5_000)
        assert ledger(client, me).get_json() == {"items": [], "next_cursor": None}
        theirs = ledger(client, bearer(other["token"])).get_json()["items"]
        assert [(e["kind"], e["delta"]) for e in theirs] == [("earn", 50)]

    def test_without_a_token_is_401(self, client, frozen):
        assert_envelope(client.get(LEDGER), 401, "unauthorized")
        assert_envelope(client.post(CHECKINS), 401, "unauthorized")


class TestCheckin:
    def test_a_check_in_is_200_with_the_points_and_the_streak(self, client, me):
        answer = client.post(CHECKINS, headers=me)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"points": 5, "streak": 1}  # the default rules' base

    def test_twice_the_same_day_is_409_limit_reached(self, client, me, frozen):
        assert client.post(CHECKINS, headers=me).status_code == 200
        frozen.move_to(datetime(2026, 5, 4, 15, 59, tzinfo=UTC))  # 23:59 the same day

        error = assert_envelope(client.post(CHECKINS, headers=me), 409, "limit_reached")

        assert error["details"] == {"day": "2026-05-04"}


class TestPointsRules:
    def test_get_answers_the_rules_in_force_the_defaults_at_first(self, client, analyst):
        answer = client.get(RULES, headers=analyst)

        assert answer.status_code == 200
        assert answer.get_json() == DEFAULT_RULES

    def test_put_replaces_the_rules_and_answers_them(self, client, operator):
        answer = client.put(RULES, json=RULES_DOC, headers=operator)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == RULES_DOC
        assert client.get(RULES, headers=operator).get_json() == RULES_DOC

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            ({"points_per_yuan": 1.5}, ["points_per_yuan"]),
            ({"points_per_yuan": "2"}, ["points_per_yuan"]),
            ({"signup_bonus": True}, ["signup_bonus"]),
            ({"birthday_month_multiplier_pct": 1.5}, ["birthday_month_multiplier_pct"]),
            ({"reminder_days_before": -1}, ["reminder_days_before"]),
            ({"bonus_multiplier": 2}, ["bonus_multiplier"]),
            ({"expiry": {"kind": "days"}}, ["expiry", "days"]),
            ({"expiry": {"kind": "days", "days": 1.5}}, ["expiry", "days"]),
            ({"expiry": {"kind": "end_of_next_year", "days": 30}}, ["expiry", "days"]),
            ({"expiry": {"kind": "never"}}, ["expiry", "kind"]),
            ({"checkin": {"base": 5, "streak_bonus": {}, "extra": 1}}, ["checkin", "extra"]),
            ({"checkin": {"base": 5, "streak_bonus": {"7": 2.5}}}, ["checkin", "streak_bonus"]),
            ({"checkin": {"base": "5", "streak_bonus": {}}}, ["checkin", "base"]),
        ],
        ids=[
            "float",
            "string",
            "bool",
            "pct-float",
            "negative",
            "unknown-field",
            "days-without-days",
            "days-float",
            "days-with-yearly",
            "unknown-expiry",
            "unknown-checkin-field",
            "float-bonus",
            "string-base",
        ],
    )
    def test_a_bad_document_is_422_naming_the_field_and_changes_nothing(
        self, client, operator, change, path
    ):
        answer = client.put(RULES, json=RULES_DOC | change, headers=operator)
        named: Any = fields_of(answer)
        for key in path:
            assert key in named, (key, named)
            named = named[key]
        assert client.get(RULES, headers=operator).get_json() == DEFAULT_RULES

    def test_a_missing_field_is_422(self, client, operator):
        partial = {k: v for k, v in RULES_DOC.items() if k != "reminder_days_before"}
        assert "reminder_days_before" in fields_of(
            client.put(RULES, json=partial, headers=operator)
        )

    def test_an_analyst_cannot_put(self, client, analyst, operator):
        assert_envelope(client.put(RULES, json=RULES_DOC, headers=analyst), 403, "forbidden")
        assert client.get(RULES, headers=operator).get_json() == DEFAULT_RULES

    def test_without_a_token_is_401(self, client, frozen):
        assert_envelope(client.get(RULES), 401, "unauthorized")
        assert_envelope(client.put(RULES, json=RULES_DOC), 401, "unauthorized")


class TestAdjustments:
    @pytest.fixture
    def url(self, member_id) -> str:
        return f"/admin/v1/members/{member_id}/points-adjustments"

    def test_an_adjustment_is_201_with_the_entry_as_operators_see_it(
        self, client, url, operator, admin, member_id
    ):
        answer = client.post(url, json={"delta": 50, "reason": "goodwill"}, headers=operator)

        assert answer.status_code == 201, answer.get_json()
        entry = answer.get_json()
        assert set(entry) == LEDGER_FIELDS | {"note"}
        assert isinstance(entry["id"], int)
        assert {k: v for k, v in entry.items() if k != "id"} == {
            "delta": 50,
            "kind": "adjust",
            "reason_code": "adjustment",
            "reason": "积分调整",
            "balance_after": 50,
            "created_at": T0_LOCAL,
            "note": "goodwill",
        }
        # The signed-in operator is the one the audit log names.
        name = client.get("/admin/v1/auth/me", headers=operator).get_json()["username"]
        [logged] = audit(client, admin, "member")
        assert (logged["action"], logged["target_id"]) == ("points.adjust", str(member_id))
        assert logged["actor_name"] == name

    def test_below_the_balance_is_409_insufficient_points(self, client, url, operator):
        client.post(url, json={"delta": 50, "reason": "goodwill"}, headers=operator)

        answer = client.post(url, json={"delta": -51, "reason": "too much"}, headers=operator)

        error = assert_envelope(answer, 409, "insufficient_points")
        assert error["details"] == {"balance": 50, "requested": 51}

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"delta": 10}, "reason"),
            ({"delta": 10, "reason": ""}, "reason"),
            ({"delta": 10, "reason": "   "}, "reason"),
            ({"reason": "why"}, "delta"),
            ({"delta": 0, "reason": "nothing"}, "delta"),
            ({"delta": "10", "reason": "text"}, "delta"),
            ({"delta": 1.5, "reason": "float"}, "delta"),
            ({"delta": 10, "reason": "ok", "note": "x"}, "note"),
        ],
        ids=[
            "no-reason",
            "empty",
            "blank",
            "no-delta",
            "zero",
            "string",
            "float",
            "unknown-field",
        ],
    )
    def test_a_bad_adjustment_is_422_naming_the_field(
        self, client, url, operator, admin, me, body, field
    ):
        assert field in fields_of(client.post(url, json=body, headers=operator))
        assert ledger(client, me).get_json()["items"] == []
        assert audit(client, admin, "member") == []

    def test_an_unknown_member_is_404(self, client, operator, member_id):
        answer = client.post(
            f"/admin/v1/members/{member_id + 1000}/points-adjustments",
            json={"delta": 5, "reason": "ghost"},
            headers=operator,
        )
        assert_envelope(answer, 404, "not_found")

    def test_an_analyst_cannot_adjust(self, client, url, analyst, me):
        answer = client.post(url, json={"delta": 5, "reason": "nope"}, headers=analyst)
        assert_envelope(answer, 403, "forbidden")
        assert ledger(client, me).get_json()["items"] == []


class TestTiers:
    @pytest.fixture
    def gold(self, session) -> dict[str, Any]:
        TierFactory(**GOLD)
        session.commit()
        return GOLD

    def test_get_lists_the_ladder_lowest_rank_first(self, client, analyst, gold, session):
        TierFactory(**SILVER)
        session.commit()

        answer = client.get(TIERS, headers=analyst)

        assert answer.status_code == 200
        assert answer.get_json() == {"items": [SILVER, GOLD]}

    def test_post_adds_a_tier_and_answers_it(self, client, operator):
        answer = client.post(TIERS, json=GOLD, headers=operator)

        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json() == GOLD
        # Left out, the benefits block is an empty one (the body schema's default).
        bare = {k: v for k, v in SILVER.items() if k != "benefits"}
        answer = client.post(TIERS, json=bare, headers=operator)
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json() == SILVER

    def test_patch_changes_the_fields_sent_and_answers_the_tier(self, client, operator, gold):
        change = {"threshold": 80_000, "name": "黄金卡"}

        answer = client.patch(f"{TIERS}/gold", json=change, headers=operator)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == GOLD | change

    def test_a_taken_code_is_409_conflict(self, client, operator, gold):
        twin = GOLD | {"name": "Another", "rank": 9}
        assert_envelope(client.post(TIERS, json=twin, headers=operator), 409, "conflict")

    def test_patching_an_unknown_tier_is_404(self, client, operator):
        answer = client.patch(f"{TIERS}/nope", json={"threshold": 5}, headers=operator)
        assert_envelope(answer, 404, "not_found")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (GOLD | {"code": "Gold"}, "code"),
            (GOLD | {"code": "gold-card"}, "code"),
            (GOLD | {"threshold": -1}, "threshold"),
            (GOLD | {"threshold": "100"}, "threshold"),
            (GOLD | {"rank": 1.5}, "rank"),
            (GOLD | {"benefits": {"cashback_pct": 3}}, "benefits"),
            (GOLD | {"benefits": {"points_multiplier_pct": "150"}}, "benefits"),
            (GOLD | {"colour": "gold"}, "colour"),
        ],
        ids=[
            "capital",
            "dash",
            "negative",
            "string",
            "float",
            "unknown-benefit",
            "string-benefit",
            "unknown-field",
        ],
    )
    def test_a_bad_tier_is_422_naming_the_field(self, client, operator, body, field):
        assert field in fields_of(client.post(TIERS, json=body, headers=operator))
        assert client.get(TIERS, headers=operator).get_json() == {"items": []}

    def test_the_code_cannot_be_patched(self, client, operator, gold):
        answer = client.patch(f"{TIERS}/gold", json={"code": "golden"}, headers=operator)
        assert "code" in fields_of(answer)

    def test_an_analyst_reads_but_cannot_write(self, client, analyst, gold):
        assert client.get(TIERS, headers=analyst).status_code == 200
        assert_envelope(client.post(TIERS, json=SILVER, headers=analyst), 403, "forbidden")
        answer = client.patch(f"{TIERS}/gold", json={"threshold": 1}, headers=analyst)
        assert_envelope(answer, 403, "forbidden")
        assert client.get(TIERS, headers=analyst).get_json() == {"items": [GOLD]}


class TestTierPolicy:
    def test_get_answers_the_policy_in_force_the_default_at_first(self, client, analyst):
        answer = client.get(POLICY, headers=analyst)

        assert answer.status_code == 200
        assert answer.get_json() == DEFAULT_POLICY

    def test_put_replaces_the_policy_and_answers_it(self, client, operator, analyst):
        policy = {
            "metric": "points_earned",
            "window": {"kind": "calendar_year"},
            "retention_days": 90,
        }

        answer = client.put(POLICY, json=policy, headers=operator)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == policy
        assert client.get(POLICY, headers=analyst).get_json() == policy

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"metric": "visits"}, "metric"),
            ({"window": {"kind": "rolling_days"}}, "window"),
            ({"window": {"kind": "calendar_year", "days": 10}}, "window"),
            ({"window": {"kind": "rolling_days", "days": 0}}, "window"),
            ({"window": {"kind": "fortnight"}}, "window"),
            ({"retention_days": "30"}, "retention_days"),
            ({"retention_days": -1}, "retention_days"),
            ({"grace": 3}, "grace"),
        ],
        ids=[
            "metric",
            "days-missing",
            "days-with-year",
            "zero-days",
            "window-kind",
            "string",
            "negative",
            "unknown-field",
        ],
    )
    def test_a_bad_policy_is_422_and_changes_nothing(self, client, operator, change, field):
        answer = client.put(POLICY, json=DEFAULT_POLICY | change, headers=operator)
        assert field in fields_of(answer)
        assert client.get(POLICY, headers=operator).get_json() == DEFAULT_POLICY

    def test_an_analyst_cannot_put(self, client, analyst):
        policy = DEFAULT_POLICY | {"retention_days": 1}
        assert_envelope(client.put(POLICY, json=policy, headers=analyst), 403, "forbidden")
        assert client.get(POLICY, headers=analyst).get_json() == DEFAULT_POLICY


class TestSimulate:
    def test_answers_how_many_members_each_tier_would_hold(self, client, analyst, member, session):
        for tier in (SILVER, GOLD):
            TierFactory(**tier)
        session.commit()

        answer = client.post(SIMULATE, json={"thresholds": {"gold": 80_000}}, headers=analyst)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"distribution": {"silver": 1, "gold": 0}}

    @pytest.mark.parametrize(
        "body",
        [
            {"thresholds": {"diamond": 1}},
            {"thresholds": {"gold": -1}},
            {"thresholds": {"gold": "1"}},
            {"thresholds": {"Gold": 1}},
            {},
            {"thresholds": {}, "apply": True},
        ],
        ids=["unknown-tier", "negative", "string", "capital", "missing", "unknown-field"],
    )
    def test_a_bad_simulation_is_422(self, client, analyst, body):
        error = assert_envelope(
            client.post(SIMULATE, json=body, headers=analyst), 422, "validation_error"
        )
        assert error["details"]

    def test_without_a_token_is_401(self, client, frozen):
        assert_envelope(client.post(SIMULATE, json={"thresholds": {}}), 401, "unauthorized")

    def test_while_one_runs_another_is_409_already_running(self, client, analyst, redis):
        running = redis.lock(tier_services.SIMULATION_LOCK, timeout=30)
        assert running.acquire(blocking=False)
        try:
            refused = client.post(SIMULATE, json={"thresholds": {}}, headers=analyst)
            assert_envelope(refused, 409, "already_running")
        finally:
            running.release()
