"""Tiers over HTTP, held to the contract: the admin's tier ladder, tier policy and the tier
simulation.

Each endpoint has one success test checking the whole answer, then its authorisation, the
validation only the HTTP layer does, and the status each domain error maps to. What the
tiers do (upgrades, assessment, the simulation's counts, the audit trail) is tested against
the services: tests/services/test_tier_changes.py, test_tier_ladder.py and
test_tier_simulation.py."""

from __future__ import annotations

from typing import Any

import pytest

from app.tiers import services as tier_services
from app.tiers.rules import DEFAULT_POLICY
from tests.factories.tiers import TierFactory
from tests.support.http import assert_envelope, fields_of

TIERS = "/admin/v1/tiers"
POLICY = "/admin/v1/tier-policy"
SIMULATE = "/admin/v1/tiers/simulate"
SILVER = {"code": "silver", "name": "银卡", "rank": 1, "threshold": 0, "benefits": {}}
GOLD = {
    "code": "gold",
    "name": "金卡",
    "rank": 2,
    "threshold": 100_000,
    "benefits": {"points_multiplier_pct": 150, "discount_pct": 5},
}


@pytest.fixture
def member(frozen, login) -> dict[str, Any]:
    """A consumer who logged in, with no phone bound (the package's ``member`` binds one)."""
    return login("o-points")


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
