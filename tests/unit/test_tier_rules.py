"""Pure tier logic: which tier a value earns, upgrades, assessment with retention, growth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.tiers import rules
from app.tiers.rules import TierRef

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASIC = TierRef("basic", "普卡", 1, 0, {"points_multiplier_pct": 100})
GOLD = TierRef("gold", "金卡", 2, 100_000, {"points_multiplier_pct": 150})
DIAMOND = TierRef("diamond", "钻石", 3, 500_000, {"points_multiplier_pct": 200})
LADDER = [DIAMOND, BASIC, GOLD]  # deliberately out of order: rank decides, not position
NOW = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)


# --- tier_for_value ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, BASIC),
        (99_999, BASIC),
        (100_000, GOLD),  # reaching the threshold is enough
        (499_999, GOLD),
        (500_000, DIAMOND),
        (10**12, DIAMOND),
    ],
)
def test_tier_for_value_is_the_highest_tier_the_value_reaches(
    value: int, expected: TierRef
) -> None:
    assert rules.tier_for_value(LADDER, value) == expected


def test_without_a_zero_threshold_tier_a_small_value_earns_none() -> None:
    assert rules.tier_for_value([GOLD, DIAMOND], 50) is None
    assert rules.tier_for_value([], 10**9) is None


# --- upgrade_to ---


def test_an_order_that_crosses_a_threshold_lifts_the_member() -> None:
    assert rules.upgrade_to(LADDER, BASIC, 100_000) == GOLD
    assert rules.upgrade_to(LADDER, BASIC, 600_000) == DIAMOND
    assert rules.upgrade_to(LADDER, None, 0) == BASIC


def test_an_order_below_the_next_threshold_changes_nothing() -> None:
    assert rules.upgrade_to(LADDER, BASIC, 99_999) is None
    assert rules.upgrade_to(LADDER, GOLD, 120_000) is None


def test_an_order_never_lowers_a_member() -> None:
    assert rules.upgrade_to(LADDER, DIAMOND, 0) is None
    assert rules.upgrade_to(LADDER, GOLD, 10) is None


@given(
    current=st.sampled_from([None, BASIC, GOLD, DIAMOND]),
    value=st.integers(min_value=0, max_value=10**9),
)
def test_upgrade_to_answers_only_higher_tiers(current: TierRef | None, value: int) -> None:
    target = rules.upgrade_to(LADDER, current, value)
    current_rank = current.rank if current else -1
    if target is None:
        qualified = rules.tier_for_value(LADDER, value)
        assert qualified is None or qualified.rank <= current_rank
    else:
        assert target.rank > current_rank
        assert target == rules.tier_for_value(LADDER, value)


# --- assess ---


def test_assessment_keeps_a_tier_during_retention() -> None:
    retain_until = NOW + timedelta(days=1)
    assert rules.assess(LADDER, DIAMOND, 0, retain_until, NOW) == DIAMOND


def test_assessment_lowers_once_retention_has_run_out() -> None:
    assert rules.assess(LADDER, DIAMOND, 150_000, NOW - timedelta(seconds=1), NOW) == GOLD
    assert rules.assess(LADDER, DIAMOND, 0, NOW - timedelta(days=400), NOW) == BASIC


def test_retention_ends_at_its_instant() -> None:
    assert rules.assess(LADDER, GOLD, 0, NOW, NOW) == BASIC


def test_assessment_without_retention_lowers_at_once() -> None:
    assert rules.assess(LADDER, GOLD, 10, None, NOW) == BASIC


def test_assessment_lifts_whatever_the_retention() -> None:
    assert rules.assess(LADDER, BASIC, 500_000, NOW + timedelta(days=300), NOW) == DIAMOND


def test_assessment_keeps_a_member_whose_value_still_qualifies() -> None:
    assert rules.assess(LADDER, GOLD, 100_000, None, NOW) == GOLD


@given(
    current=st.sampled_from([None, BASIC, GOLD, DIAMOND]),
    value=st.integers(min_value=0, max_value=10**6),
    offset_days=st.integers(min_value=-400, max_value=400),
)
def test_assessment_is_the_qualified_tier_unless_retention_holds_a_higher_one(
    current: TierRef | None, value: int, offset_days: int
) -> None:
    retain_until = NOW + timedelta(days=offset_days)
    result = rules.assess(LADDER, current, value, retain_until, NOW)
    qualified = rules.tier_for_value(LADDER, value)
    if offset_days > 0 and current is not None and current.rank > qualified.rank:  # type: ignore[union-attr]
        assert result == current
    else:
        assert result == qualified


# --- growth ---


def test_growth_shows_the_next_tier_and_what_is_still_needed() -> None:
    assert rules.growth(LADDER, BASIC, 30_000) == {
        "value": 30_000,
        "next_tier": {"code": "gold", "name": "金卡"},
        "needed": 70_000,
    }


def test_growth_needs_nothing_more_once_the_value_is_past_the_next_threshold() -> None:
    assert rules.growth(LADDER, GOLD, 800_000)["needed"] == 0
    assert rules.growth(LADDER, GOLD, 800_000)["next_tier"] == {"code": "diamond", "name": "钻石"}


def test_growth_at_the_top_has_no_next_tier() -> None:
    assert rules.growth(LADDER, DIAMOND, 10) == {"value": 10, "next_tier": None, "needed": 0}


def test_growth_without_a_tier_points_at_the_lowest() -> None:
    assert rules.growth([GOLD, DIAMOND], None, 40_000)["next_tier"] == {
        "code": "gold",
        "name": "金卡",
    }
    assert rules.growth([GOLD, DIAMOND], None, 40_000)["needed"] == 60_000


# --- windows and proposed thresholds ---


def test_the_calendar_year_is_the_business_year_in_shanghai() -> None:
    # 2025-12-31 17:00 UTC is already 2026 in Shanghai
    start, end = rules.window_bounds(
        rules.Window(rules.WindowKind.CALENDAR_YEAR),
        datetime(2025, 12, 31, 17, tzinfo=UTC),
        SHANGHAI,
    )
    assert start == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_a_rolling_window_ends_just_after_now() -> None:
    start, end = rules.window_bounds(rules.Window(rules.WindowKind.ROLLING_DAYS, 90), NOW, SHANGHAI)
    assert start == NOW - timedelta(days=90)
    assert start <= NOW < end
    assert end - NOW == timedelta(microseconds=1)


def test_with_thresholds_changes_only_the_named_tiers() -> None:
    proposed = rules.with_thresholds(LADDER, {"gold": 200_000})
    by_code = {tier.code: tier for tier in proposed}
    assert by_code["gold"].threshold == 200_000
    assert by_code["diamond"].threshold == 500_000
    assert by_code["basic"] == BASIC
    assert GOLD.threshold == 100_000  # the original is untouched
