"""Points and tiers over HTTP: the member's ledger, card and daily check-in; the admin's
points rules, adjustments, tier ladder, tier policy and the tier simulation."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.points.rules import DEFAULT_RULES
from app.tiers import services as tier_services
from app.tiers.models import MemberTier, Tier, TierChange
from app.tiers.rules import DEFAULT_POLICY
from tests.support.http import assert_envelope, bearer
from tests.support.signing import open_post

# 10:00 on 4 May 2026 in Shanghai.
T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)
SHANGHAI = timedelta(hours=8)
LEDGER = "/mp/v1/points/ledger"
CARD = "/mp/v1/card"
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
PLATINUM = {
    "code": "platinum",
    "name": "白金卡",
    "rank": 3,
    "threshold": 500_000,
    "benefits": {"points_multiplier_pct": 200, "free_shipping": True},
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


def local(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == SHANGHAI, text
    return moment


class TestLedger:
    @pytest.fixture
    def history(self, client, partner, frozen, login, member, operator, admin_token, member_id):
        """earn 200 (30-day lots), 20 days on earn 100; 31 days on the first lot expires at
        the next spend (-200), spend 40, refund half of the second order (-50), adjust +15."""
        card = {"card_no": member["member"]["card_no"]}
        days_30 = RULES_DOC | {"points_per_yuan": 1}
        assert client.put(RULES, json=days_30, headers=operator).status_code == 200
        order(client, partner, card, "pos-a", 20_000)
        frozen.shift(timedelta(days=20))
        order(client, partner, card, "pos-b", 10_000)
        frozen.shift(timedelta(days=11))
        spent = open_post(
            client,
            partner,
            "/open/v1/points/redeem",
            {"member": card, "points": 40, "external_id": "t-1"},
        )
        assert spent.get_json()["balance"] == 60
        refund = {
            "channel": "pos",
            "external_order_id": "pos-b",
            "external_id": "rf-1",
            "amount_cents": 5_000,
        }
        assert open_post(client, partner, "/open/v1/refunds", refund).status_code == 201
        adjusted = client.post(
            f"/admin/v1/members/{member_id}/points-adjustments",
            json={"delta": 15, "reason": "goodwill"},
            headers=bearer(admin_token("operator")),
        )
        assert adjusted.status_code == 201
        return bearer(login("o-points")["token"])  # the first token is a month old

    def test_lists_every_kind_newest_first_with_the_balance_after_each(self, client, history):
        answer = ledger(client, history)
        assert answer.status_code == 200
        body = answer.get_json()
        assert body["next_cursor"] is None
        items = body["items"]
        assert all(set(entry) == LEDGER_FIELDS for entry in items)
        assert [(e["kind"], e["delta"], e["balance_after"]) for e in items] == [
            ("adjust", 15, 25),
            ("reverse", -50, 10),
            ("spend", -40, 60),
            ("expire", -200, 100),
            ("earn", 100, 300),
            ("earn", 200, 200),
        ]
        ids = [entry["id"] for entry in items]
        assert ids == sorted(ids, reverse=True)
        # A stable code and the member's text for each; no operator, no internal note.
        assert [(e["reason_code"], e["reason"]) for e in items] == [
            ("adjustment", "积分调整"),
            ("refund", "订单退款"),
            ("redemption", "积分抵扣"),
            ("expiry", "积分过期"),
            ("order", "订单积分"),
            ("order", "订单积分"),
        ]
        assert local(items[-1]["created_at"]) == T0
        assert local(items[0]["created_at"]) == T0 + timedelta(days=31)

    def test_pages_follow_the_cursor_without_gaps_or_repeats(self, client, history):
        first = ledger(client, history, limit=4).get_json()
        assert len(first["items"]) == 4
        assert first["next_cursor"]
        second = ledger(client, history, limit=4, cursor=first["next_cursor"]).get_json()
        assert second["next_cursor"] is None
        whole = ledger(client, history).get_json()["items"]
        assert first["items"] + second["items"] == whole
        assert [e["kind"] for e in second["items"]] == ["earn", "earn"]

    def test_an_exact_last_page_has_no_next_cursor(self, client, history):
        page = ledger(client, history, limit=6).get_json()
        assert len(page["items"]) == 6
        assert page["next_cursor"] is None
        shorter = ledger(client, history, limit=5).get_json()
        rest = ledger(client, history, cursor=shorter["next_cursor"]).get_json()
        assert rest == {"items": page["items"][5:], "next_cursor": None}

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
        assert_envelope(client.get(CARD), 401, "unauthorized")
        assert_envelope(client.post(CHECKINS), 401, "unauthorized")


class TestCard:
    def test_a_new_member_has_the_base_tier_and_no_points(self, client, operator, me):
        for tier in (SILVER, GOLD):
            assert client.post(TIERS, json=tier, headers=operator).status_code == 201
        card = client.get(CARD, headers=me).get_json()
        assert card["points"] == {"balance": 0, "expiring": []}
        assert card["tier"] == {"code": "silver", "name": "银卡", "benefits": {}}
        assert card["growth"] == {
            "metric": "spend_cents",
            "value": 0,
            "next_tier": {"code": "gold", "name": "金卡"},
            "needed": 100_000,
        }

    def test_after_orders_shows_balance_soonest_expiry_tier_and_growth(
        self, client, partner, operator, member, me
    ):
        for tier in (SILVER, GOLD, PLATINUM):
            assert client.post(TIERS, json=tier, headers=operator).status_code == 201
        card_ref = {"card_no": member["member"]["card_no"]}
        days_30 = RULES_DOC | {"points_per_yuan": 1}
        assert client.put(RULES, json=days_30, headers=operator).status_code == 200
        first = order(client, partner, card_ref, "pos-1", 150_000)  # silver 100 %: 1,500
        assert first["tier"]["code"] == "gold"
        yearly = days_30 | {"expiry": {"kind": "end_of_next_year"}}
        assert client.put(RULES, json=yearly, headers=operator).status_code == 200
        second = order(client, partner, card_ref, "pos-2", 10_000)  # gold 150 %: 150
        assert second["points_earned"] == 150

        card = client.get(CARD, headers=me).get_json()

        assert card["points"]["balance"] == 1_650
        expiring = [(e["points"], local(e["expires_at"])) for e in card["points"]["expiring"]]
        assert expiring == [
            (1_500, T0 + timedelta(days=30)),
            (150, datetime(2028, 1, 1, tzinfo=UTC) - SHANGHAI),
        ]
        assert card["tier"] == {
            "code": "gold",
            "name": "金卡",
            "benefits": {"points_multiplier_pct": 150, "discount_pct": 5},
        }
        assert card["growth"] == {
            "metric": "spend_cents",
            "value": 160_000,
            "next_tier": {"code": "platinum", "name": "白金卡"},
            "needed": 340_000,
        }

    def test_the_top_tier_needs_nothing_more(self, client, partner, operator, member, me):
        for tier in (SILVER, GOLD):
            client.post(TIERS, json=tier, headers=operator)
        order(client, partner, {"card_no": member["member"]["card_no"]}, "pos-1", 120_000)
        growth = client.get(CARD, headers=me).get_json()["growth"]
        assert growth == {"metric": "spend_cents", "value": 120_000, "next_tier": None, "needed": 0}

    def test_a_refund_lowers_growth_and_balance_but_not_the_tier(
        self, client, partner, operator, member, me
    ):
        for tier in (SILVER, GOLD):
            client.post(TIERS, json=tier, headers=operator)
        order(client, partner, {"card_no": member["member"]["card_no"]}, "pos-1", 120_000)
        refund = {
            "channel": "pos",
            "external_order_id": "pos-1",
            "external_id": "rf-1",
            "amount_cents": 60_000,
        }
        assert open_post(client, partner, "/open/v1/refunds", refund).status_code == 201
        card = client.get(CARD, headers=me).get_json()
        assert card["tier"]["code"] == "gold"
        assert card["growth"]["value"] == 60_000
        assert card["points"]["balance"] == 600

    def test_expired_points_leave_the_card_before_the_expiry_job_runs(
        self, client, partner, operator, frozen, login, member
    ):
        assert client.put(RULES, json=RULES_DOC, headers=operator).status_code == 200
        order(client, partner, {"card_no": member["member"]["card_no"]}, "pos-1", 10_000)
        frozen.shift(timedelta(days=30))
        card = client.get(CARD, headers=bearer(login("o-points")["token"])).get_json()
        assert card["points"] == {"balance": 0, "expiring": []}


class TestCheckin:
    def test_the_first_check_in_is_200_and_earns_the_base(self, client, me):
        answer = client.post(CHECKINS, headers=me)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"points": 5, "streak": 1}
        entries = ledger(client, me).get_json()["items"]
        assert [(e["kind"], e["delta"], e["balance_after"]) for e in entries] == [("earn", 5, 5)]

    def test_twice_the_same_day_is_409_limit_reached_and_earns_once(self, client, me, frozen):
        assert client.post(CHECKINS, headers=me).status_code == 200
        frozen.move_to(datetime(2026, 5, 4, 15, 59, tzinfo=UTC))  # 23:59 the same day
        assert_envelope(client.post(CHECKINS, headers=me), 409, "limit_reached")
        assert client.get(CARD, headers=me).get_json()["points"]["balance"] == 5
        assert len(ledger(client, me).get_json()["items"]) == 1

    def test_23_59_and_00_01_beijing_time_are_two_days(self, client, member, me, frozen):
        frozen.move_to(datetime(2026, 5, 4, 15, 59, tzinfo=UTC))  # 23:59 on 4 May
        assert client.post(CHECKINS, headers=me).get_json() == {"points": 5, "streak": 1}
        frozen.move_to(datetime(2026, 5, 4, 16, 1, tzinfo=UTC))  # 00:01 on 5 May, UTC still 4
        second = client.post(CHECKINS, headers=me)
        assert second.status_code == 200, second.get_json()
        assert second.get_json() == {"points": 5, "streak": 2}

    def test_the_streak_bonus_comes_on_its_day_and_a_gap_restarts_the_streak(
        self, client, operator, me, frozen
    ):
        assert client.put(RULES, json=RULES_DOC, headers=operator).status_code == 200
        answers = []
        for _ in range(4):
            answers.append(client.post(CHECKINS, headers=me).get_json())
            frozen.shift(timedelta(days=1))
        assert answers == [
            {"points": 3, "streak": 1},
            {"points": 3, "streak": 2},
            {"points": 13, "streak": 3},
            {"points": 3, "streak": 4},
        ]
        frozen.shift(timedelta(days=1))  # a day missed
        assert client.post(CHECKINS, headers=me).get_json() == {"points": 3, "streak": 1}
        assert client.get(CARD, headers=me).get_json()["points"]["balance"] == 25


class TestPointsRules:
    def test_anyone_who_reads_gets_the_defaults_at_first(self, client, analyst):
        answer = client.get(RULES, headers=analyst)
        assert answer.status_code == 200
        assert answer.get_json() == DEFAULT_RULES

    def test_put_replaces_the_rules_audited_and_orders_use_them(
        self, client, partner, operator, admin, member
    ):
        answer = client.put(RULES, json=RULES_DOC, headers=operator)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == RULES_DOC
        assert client.get(RULES, headers=operator).get_json() == RULES_DOC
        earned = order(client, partner, {"card_no": member["member"]["card_no"]}, "p", 10_000)
        assert earned["points_earned"] == 200
        [entry] = audit(client, admin, "settings")
        assert entry["action"] == "points_rules.update"
        assert (entry["before"], entry["after"]) == (DEFAULT_RULES, RULES_DOC)

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

    def test_an_adjustment_is_201_with_the_ledger_entry_and_audited(
        self, client, url, operator, admin, me, member_id
    ):
        answer = client.post(url, json={"delta": 50, "reason": "goodwill"}, headers=operator)

        assert answer.status_code == 201, answer.get_json()
        entry = answer.get_json()
        assert set(entry) == LEDGER_FIELDS | {"note"}
        assert (entry["delta"], entry["kind"], entry["balance_after"]) == (50, "adjust", 50)
        assert (entry["reason_code"], entry["reason"], entry["note"]) == (
            "adjustment",
            "积分调整",
            "goodwill",
        )
        assert local(entry["created_at"]) == T0
        name = client.get("/admin/v1/auth/me", headers=operator).get_json()["username"]
        # The member sees the entry without the operator's note or name.
        [seen] = ledger(client, me).get_json()["items"]
        assert seen == {key: value for key, value in entry.items() if key != "note"}
        assert name not in str(seen)
        [logged] = audit(client, admin, "member")
        assert logged["action"] == "points.adjust"
        assert logged["target_id"] == str(member_id)
        assert logged["actor_name"] == name
        assert logged["before"] == {"balance": 0}
        assert logged["after"] == {"balance": 50, "delta": 50, "reason": "goodwill"}

    def test_a_negative_adjustment_takes_points_back(self, client, url, operator, me):
        client.post(url, json={"delta": 50, "reason": "goodwill"}, headers=operator)
        answer = client.post(url, json={"delta": -20, "reason": "correction"}, headers=operator)
        assert answer.status_code == 201
        assert (answer.get_json()["delta"], answer.get_json()["balance_after"]) == (-20, 30)
        assert client.get(CARD, headers=me).get_json()["points"]["balance"] == 30

    def test_below_the_balance_is_409_insufficient_points_and_changes_nothing(
        self, client, url, operator, admin, me
    ):
        client.post(url, json={"delta": 50, "reason": "goodwill"}, headers=operator)
        answer = client.post(url, json={"delta": -51, "reason": "too much"}, headers=operator)
        error = assert_envelope(answer, 409, "insufficient_points")
        assert error["details"] == {"balance": 50, "requested": 51}
        assert len(ledger(client, me).get_json()["items"]) == 1
        assert client.get(CARD, headers=me).get_json()["points"]["balance"] == 50
        assert len(audit(client, admin, "member")) == 1

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
    def test_create_list_and_patch_audited(self, client, operator, analyst, admin):
        assert client.get(TIERS, headers=analyst).get_json() == {"items": []}
        for tier in (GOLD, SILVER):
            answer = client.post(TIERS, json=tier, headers=operator)
            assert answer.status_code == 201, answer.get_json()
            assert answer.get_json() == tier
        assert client.get(TIERS, headers=analyst).get_json() == {"items": [SILVER, GOLD]}

        patched = client.patch(
            f"{TIERS}/gold", json={"threshold": 80_000, "name": "黄金卡"}, headers=operator
        )

        assert patched.status_code == 200, patched.get_json()
        assert patched.get_json() == GOLD | {"threshold": 80_000, "name": "黄金卡"}
        assert client.get(TIERS, headers=analyst).get_json()["items"][1]["threshold"] == 80_000
        logged = audit(client, admin, "tier")
        assert [(e["action"], e["target_id"]) for e in logged] == [
            ("tier.update", "gold"),
            ("tier.create", "silver"),
            ("tier.create", "gold"),
        ]
        assert logged[0]["before"]["threshold"] == 100_000
        assert logged[0]["after"]["threshold"] == 80_000

    def test_a_missing_benefits_block_is_empty(self, client, operator):
        bare = {k: v for k, v in SILVER.items() if k != "benefits"}
        assert client.post(TIERS, json=bare, headers=operator).get_json()["benefits"] == {}

    @pytest.mark.parametrize(
        "twin",
        [GOLD | {"name": "Another", "rank": 9}, GOLD | {"code": "gold2"}],
        ids=["same-code", "same-rank"],
    )
    def test_a_duplicate_code_or_rank_is_409(self, client, operator, twin):
        assert client.post(TIERS, json=GOLD, headers=operator).status_code == 201
        assert_envelope(client.post(TIERS, json=twin, headers=operator), 409, "conflict")
        assert client.get(TIERS, headers=operator).get_json() == {"items": [GOLD]}

    def test_patching_to_a_taken_rank_is_409_and_changes_nothing(self, client, operator):
        client.post(TIERS, json=SILVER, headers=operator)
        client.post(TIERS, json=GOLD, headers=operator)
        answer = client.patch(f"{TIERS}/gold", json={"rank": 1}, headers=operator)
        assert_envelope(answer, 409, "conflict")
        assert client.get(TIERS, headers=operator).get_json() == {"items": [SILVER, GOLD]}

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

    def test_the_code_cannot_be_patched(self, client, operator):
        client.post(TIERS, json=GOLD, headers=operator)
        answer = client.patch(f"{TIERS}/gold", json={"code": "golden"}, headers=operator)
        assert "code" in fields_of(answer)

    def test_an_analyst_reads_but_cannot_write(self, client, analyst, operator):
        client.post(TIERS, json=GOLD, headers=operator)
        assert client.get(TIERS, headers=analyst).status_code == 200
        assert_envelope(client.post(TIERS, json=SILVER, headers=analyst), 403, "forbidden")
        answer = client.patch(f"{TIERS}/gold", json={"threshold": 1}, headers=analyst)
        assert_envelope(answer, 403, "forbidden")
        assert client.get(TIERS, headers=analyst).get_json() == {"items": [GOLD]}


class TestTierPolicy:
    def test_get_answers_the_default_then_put_replaces_it(
        self, client, operator, analyst, admin, me
    ):
        assert client.get(POLICY, headers=analyst).get_json() == DEFAULT_POLICY
        policy = {
            "metric": "points_earned",
            "window": {"kind": "calendar_year"},
            "retention_days": 90,
        }
        answer = client.put(POLICY, json=policy, headers=operator)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == policy
        assert client.get(POLICY, headers=analyst).get_json() == policy
        assert client.get(CARD, headers=me).get_json()["growth"]["metric"] == "points_earned"
        [logged] = audit(client, admin, "settings")
        assert logged["action"] == "tier_policy.update"
        assert (logged["before"], logged["after"]) == (DEFAULT_POLICY, policy)

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
    @pytest.fixture
    def members(self, client, partner, operator, login) -> dict[str, int]:
        """Three members: gold by an order of 1,500 yuan, silver with 500, silver with none."""
        for tier in (SILVER, GOLD, PLATINUM):
            assert client.post(TIERS, json=tier, headers=operator).status_code == 201
        big = order(client, partner, {"phone": "13900000001"}, "pos-1", 150_000)
        small = order(client, partner, {"phone": "13900000002"}, "pos-2", 50_000)
        idle = login("o-idle")
        assert big["tier"]["code"] == "gold"
        assert small["tier"]["code"] == "silver"
        return {"big": big["member_id"], "small": small["member_id"], "idle": idle["member"]["id"]}

    def state(self, session) -> tuple[Any, ...]:
        session.expire_all()
        tiers = session.execute(
            select(Tier.code, Tier.rank, Tier.threshold, Tier.benefits).order_by(Tier.rank)
        ).all()
        member_tiers = session.execute(
            select(MemberTier.member_id, MemberTier.tier_code, MemberTier.retain_until).order_by(
                MemberTier.member_id
            )
        ).all()
        changes = session.scalar(select(func.count()).select_from(TierChange))
        return tuple(tiers), tuple(member_tiers), changes

    @pytest.mark.parametrize(
        ("thresholds", "distribution"),
        [
            ({}, {"silver": 2, "gold": 1, "platinum": 0}),
            ({"gold": 40_000}, {"silver": 1, "gold": 2, "platinum": 0}),
            # The gold member keeps gold below the new threshold: retention has not run out.
            ({"gold": 200_000}, {"silver": 2, "gold": 1, "platinum": 0}),
            ({"gold": 10_000, "platinum": 100_000}, {"silver": 1, "gold": 1, "platinum": 1}),
        ],
        ids=["as-is", "gold-lower", "gold-higher", "both-lower"],
    )
    def test_answers_a_distribution_and_changes_nothing(
        self, client, analyst, members, session, thresholds, distribution
    ):
        before = self.state(session)
        answer = client.post(SIMULATE, json={"thresholds": thresholds}, headers=analyst)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"distribution": distribution}
        assert self.state(session) == before

    def test_assessment_then_does_what_the_simulation_said(
        self, client, operator, members, session, deps
    ):
        simulated = client.post(SIMULATE, json={"thresholds": {"gold": 40_000}}, headers=operator)
        patched = client.patch(f"{TIERS}/gold", json={"threshold": 40_000}, headers=operator)
        assert patched.status_code == 200
        tier_services.assess_tiers(uow=deps.uow())
        session.expire_all()
        held = dict(session.execute(select(MemberTier.member_id, MemberTier.tier_code)).all())
        actual = {"silver": 0, "gold": 0, "platinum": 0}
        for member_id in members.values():
            actual[held.get(member_id) or "silver"] += 1
        assert actual == simulated.get_json()["distribution"]
        assert held[members["small"]] == "gold"

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
    def test_a_bad_simulation_is_422_and_changes_nothing(
        self, client, analyst, members, session, body
    ):
        before = self.state(session)
        fields = assert_envelope(
            client.post(SIMULATE, json=body, headers=analyst), 422, "validation_error"
        )["details"]
        assert fields
        assert self.state(session) == before

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
        answer = client.post(SIMULATE, json={"thresholds": {}}, headers=analyst)
        assert answer.status_code == 200, answer.get_json()
        # The finished run let its lock go: nothing blocks the next one.
        assert not redis.exists(tier_services.SIMULATION_LOCK)
