"""Points over HTTP, held to the contract: the member's ledger and daily check-in; the
admin's points rules and adjustments.

Each endpoint has one success test checking the whole answer, then its authorisation, the
validation only the HTTP layer does, and the status each domain error maps to. What the
points do (arithmetic, expiry, streaks, the audit trail) is tested against the services:
tests/services/test_points_ledger.py, test_points_reading.py, test_points_adjustments.py
and test_checkins.py."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from app.points.rules import DEFAULT_RULES
from tests.support.http import assert_envelope, bearer, fields_of
from tests.support.signing import open_post

T0_LOCAL = "2026-05-04T10:00:00+08:00"  # T0 of tests/support/http.py, in Shanghai
LEDGER = "/mp/v1/points/ledger"
CHECKINS = "/mp/v1/checkins"
RULES = "/admin/v1/points-rules"
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


@pytest.fixture
def member(frozen, login) -> dict[str, Any]:
    """A consumer who logged in, with no phone bound (the package's ``member`` binds one)."""
    return login("o-points")


@pytest.fixture
def me(member) -> dict[str, str]:
    return bearer(member["token"])


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
