"""Settings documents as typed values: the schema that validates a document builds its
frozen dataclass, and the dataclass gives back the document key for key."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.points import rules as points
from app.settings.documents import InvalidSettingsDocument
from app.tiers import rules as tiers

SMALL = st.integers(min_value=0, max_value=100_000)
EXPIRY = st.one_of(
    st.just({"kind": "end_of_next_year"}),
    st.builds(lambda days: {"kind": "days", "days": days}, st.integers(1, 3650)),
)
POINTS_RULES = st.fixed_dictionaries(
    {
        "points_per_yuan": st.integers(0, 1000),
        "signup_bonus": st.integers(0, 1_000_000),
        "birthday_month_multiplier_pct": st.integers(100, 1000),
        "checkin": st.fixed_dictionaries(
            {
                "base": SMALL,
                "streak_bonus": st.dictionaries(st.integers(1, 9999).map(str), SMALL, max_size=6),
            }
        ),
        "expiry": EXPIRY,
        "reminder_days_before": st.integers(0, 365),
    }
)
WINDOW = st.one_of(
    st.just({"kind": "calendar_year"}),
    st.builds(lambda days: {"kind": "rolling_days", "days": days}, st.integers(1, 3660)),
)
TIER_POLICY = st.fixed_dictionaries(
    {
        "metric": st.sampled_from([metric.value for metric in tiers.Metric]),
        "window": WINDOW,
        "retention_days": st.integers(0, 3660),
    }
)


def same_bytes(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal and serialised alike: the same keys in the same order."""
    return json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)


def test_the_default_points_rules_round_trip() -> None:
    typed = points.parse_points_rules(points.DEFAULT_RULES)
    assert typed.checkin == points.CheckinRules(base=5, streak_bonus=((7, 20),))
    assert typed.expiry == points.Expiry(points.ExpiryKind.END_OF_NEXT_YEAR)
    assert same_bytes(typed.document(), points.DEFAULT_RULES)


def test_the_default_tier_policy_round_trips() -> None:
    typed = tiers.parse_tier_policy(tiers.DEFAULT_POLICY)
    assert typed == tiers.TierPolicy(
        metric=tiers.Metric.SPEND_CENTS,
        window=tiers.Window(tiers.WindowKind.ROLLING_DAYS, 365),
        retention_days=365,
    )
    assert same_bytes(typed.document(), tiers.DEFAULT_POLICY)


def in_schema_order(document: dict[str, Any], schema: Any) -> dict[str, Any]:
    """The document as the schema loads it (fields in declared order), which is how a
    validated document was stored before it had a dataclass."""
    return {
        name: in_schema_order(document[name], field.schema)
        if hasattr(field, "schema") and isinstance(document[name], dict)
        else document[name]
        for name, field in schema.fields.items()
        if name in document
    }


@given(POINTS_RULES)
def test_any_valid_points_rules_document_round_trips(document: dict[str, Any]) -> None:
    typed = points.parse_points_rules(document)
    assert typed.document() == document
    assert same_bytes(typed.document(), in_schema_order(document, points.PointsRulesSchema()))
    assert points.parse_points_rules(typed.document()) == typed


@given(TIER_POLICY)
def test_any_valid_tier_policy_document_round_trips(document: dict[str, Any]) -> None:
    typed = tiers.parse_tier_policy(document)
    assert typed.document() == document
    assert same_bytes(typed.document(), in_schema_order(document, tiers.TierPolicySchema()))
    assert tiers.parse_tier_policy(typed.document()) == typed


def test_the_typed_settings_are_frozen() -> None:
    typed = points.parse_points_rules(points.DEFAULT_RULES)
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.signup_bonus = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"points_per_yuan": "1"}, "points_per_yuan"),
        ({"signup_bonus": -1}, "signup_bonus"),
        ({"expiry": {"kind": "days"}}, "expiry"),
        ({"checkin": {"base": 5, "streak_bonus": {"07": 1}}}, "checkin"),
        ({"reminder_days_before": True}, "reminder_days_before"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_points_rules_document_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidSettingsDocument) as refused:
        points.parse_points_rules(points.DEFAULT_RULES | change)
    assert refused.value.key == "points_rules"
    assert field in refused.value.messages
    assert "'points_rules' is not valid: " in str(refused.value)
    assert field in str(refused.value)


def test_a_points_rules_document_missing_a_field_is_refused() -> None:
    document = {k: v for k, v in points.DEFAULT_RULES.items() if k != "signup_bonus"}
    with pytest.raises(InvalidSettingsDocument, match="signup_bonus"):
        points.parse_points_rules(document)


@pytest.mark.parametrize(
    "change",
    [
        {"metric": "visits"},
        {"window": {"kind": "calendar_year", "days": 30}},
        {"retention_days": 1.5},
    ],
)
def test_an_invalid_tier_policy_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidSettingsDocument) as refused:
        tiers.parse_tier_policy(tiers.DEFAULT_POLICY | change)
    assert refused.value.key == "tier_policy"
    assert set(refused.value.messages) == set(change)


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidSettingsDocument, match="tier_policy"):
        tiers.parse_tier_policy(["spend_cents"])
