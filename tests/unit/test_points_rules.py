"""Pure points arithmetic: earning, expiry dates, which lots a spend takes, refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.points import rules
from app.points.rules import LotView

SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- points_for_amount ---


@pytest.mark.parametrize(
    ("amount_cents", "per_yuan", "tier_pct", "birthday_pct", "expected"),
    [
        (12_345, 1, 100, 100, 123),  # 123.45 yuan -> 123, floored
        (99, 1, 100, 100, 0),  # under one yuan earns nothing
        (100, 1, 100, 100, 1),
        (12_399, 2, 150, 100, 371),  # 123.99 * 2 * 1.5 = 371.97
        (12_345, 1, 100, 200, 246),  # 123.45 * 2 = 246.9
        (10_050, 3, 125, 150, 565),  # 100.5 * 3 * 1.25 * 1.5 = 565.3125
        (66_667, 1, 150, 100, 1000),  # 666.67 * 1.5 = 1000.005
        (0, 1, 100, 100, 0),
        (-500, 1, 100, 100, 0),
        (50_000, 0, 200, 200, 0),
    ],
)
def test_points_for_amount_floors_exactly(
    amount_cents: int, per_yuan: int, tier_pct: int, birthday_pct: int, expected: int
) -> None:
    assert (
        rules.points_for_amount(
            amount_cents, points_per_yuan=per_yuan, tier_pct=tier_pct, birthday_pct=birthday_pct
        )
        == expected
    )


@given(
    amount=st.integers(min_value=0, max_value=10**11),
    per_yuan=st.integers(min_value=0, max_value=1000),
    tier_pct=st.integers(min_value=0, max_value=1000),
    birthday_pct=st.integers(min_value=100, max_value=1000),
)
def test_points_for_amount_is_the_exact_floor_of_the_rational_product(
    amount: int, per_yuan: int, tier_pct: int, birthday_pct: int
) -> None:
    exact = Fraction(amount, 100) * per_yuan * Fraction(tier_pct, 100) * Fraction(birthday_pct, 100)
    got = rules.points_for_amount(
        amount, points_per_yuan=per_yuan, tier_pct=tier_pct, birthday_pct=birthday_pct
    )
    assert isinstance(got, int)
    assert got == exact.numerator // exact.denominator


def test_the_defaults_are_one_point_per_yuan_without_multipliers() -> None:
    assert rules.points_for_amount(25_099, points_per_yuan=1) == 250


# --- expiry_for ---


@pytest.mark.parametrize(
    ("earned_at", "expires_at"),
    [
        # mid-2025 in Shanghai: gone at 2027-01-01 00:00 Shanghai = 2026-12-31 16:00 UTC
        (datetime(2025, 6, 15, 4, 0, tzinfo=UTC), datetime(2026, 12, 31, 16, 0, tzinfo=UTC)),
        # 2025-12-31 23:59 Shanghai is still 2025
        (datetime(2025, 12, 31, 15, 59, tzinfo=UTC), datetime(2026, 12, 31, 16, 0, tzinfo=UTC)),
        # 2025-12-31 17:00 UTC is already 2026-01-01 01:00 in Shanghai: a year later
        (datetime(2025, 12, 31, 17, 0, tzinfo=UTC), datetime(2027, 12, 31, 16, 0, tzinfo=UTC)),
        # 2026-01-01 00:00 Shanghai exactly
        (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), datetime(2027, 12, 31, 16, 0, tzinfo=UTC)),
    ],
)
def test_end_of_next_year_is_the_first_instant_of_january_first_two_years_on_in_shanghai(
    earned_at: datetime, expires_at: datetime
) -> None:
    got = rules.expiry_for(earned_at, rules.Expiry(rules.ExpiryKind.END_OF_NEXT_YEAR), SHANGHAI)

    assert got == expires_at
    assert got.utcoffset() == timedelta(0)
    local = got.astimezone(SHANGHAI)
    assert (local.month, local.day, local.hour, local.minute, local.second) == (1, 1, 0, 0, 0)
    assert local.year == earned_at.astimezone(SHANGHAI).year + 2


@pytest.mark.parametrize("days", [1, 30, 365, 3650])
def test_days_expiry_is_that_many_days_after_the_earning(days: int) -> None:
    earned = datetime(2025, 2, 28, 23, 30, 15, 123456, tzinfo=UTC)
    expiry = rules.Expiry(rules.ExpiryKind.DAYS, days)
    assert rules.expiry_for(earned, expiry, SHANGHAI) == earned + timedelta(days=days)


# --- take_from_lots ---


def test_a_spend_takes_from_the_lots_in_the_order_given() -> None:
    lots = [LotView(7, 30), LotView(3, 50), LotView(9, 100)]

    assert rules.take_from_lots(lots, 60) == ([(7, 30), (3, 30)], 0)


def test_a_spend_that_fits_the_first_lot_touches_no_other() -> None:
    assert rules.take_from_lots([LotView(1, 100), LotView(2, 100)], 100) == ([(1, 100)], 0)


def test_empty_lots_are_skipped() -> None:
    assert rules.take_from_lots([LotView(1, 0), LotView(2, 5)], 3) == ([(2, 3)], 0)


def test_the_shortfall_is_what_the_lots_could_not_give() -> None:
    assert rules.take_from_lots([LotView(1, 10), LotView(2, 5)], 40) == ([(1, 10), (2, 5)], 25)


def test_nothing_to_take_takes_nothing() -> None:
    assert rules.take_from_lots([LotView(1, 10)], 0) == ([], 0)
    assert rules.take_from_lots([], 10) == ([], 10)


@given(
    remaining=st.lists(st.integers(min_value=0, max_value=500), max_size=8),
    points=st.integers(min_value=0, max_value=3000),
)
def test_take_from_lots_takes_exactly_what_is_asked_or_everything(
    remaining: list[int], points: int
) -> None:
    lots = [LotView(index, left) for index, left in enumerate(remaining)]

    taken, shortfall = rules.take_from_lots(lots, points)

    total = sum(amount for _, amount in taken)
    assert total + shortfall == points
    assert total == min(points, sum(remaining))
    assert all(0 < amount <= remaining[lot_id] for lot_id, amount in taken)
    # soonest first: every lot before the last one touched is emptied
    ids = [lot_id for lot_id, _ in taken]
    assert ids == sorted(ids)
    for lot_id, amount in taken[:-1]:
        assert amount == remaining[lot_id]


# --- reversal_for_refund ---


def test_a_full_refund_takes_back_everything_the_order_earned() -> None:
    assert (
        rules.reversal_for_refund(
            points_earned=123,
            order_amount_cents=12_345,
            refunded_before_cents=0,
            refund_cents=12_345,
        )
        == 123
    )


def test_a_partial_refund_takes_back_in_proportion_floored() -> None:
    # a third of 100 points is 33.33: 33
    assert (
        rules.reversal_for_refund(
            points_earned=100, order_amount_cents=3_000, refunded_before_cents=0, refund_cents=1_000
        )
        == 33
    )


def test_the_last_of_three_thirds_takes_the_remainder() -> None:
    amounts = [
        rules.reversal_for_refund(
            points_earned=100,
            order_amount_cents=3_000,
            refunded_before_cents=before,
            refund_cents=1_000,
        )
        for before in (0, 1_000, 2_000)
    ]
    assert amounts == [33, 33, 34]


def test_an_order_that_earned_nothing_reverses_nothing() -> None:
    assert (
        rules.reversal_for_refund(
            points_earned=0, order_amount_cents=50, refunded_before_cents=0, refund_cents=50
        )
        == 0
    )
    assert (
        rules.reversal_for_refund(
            points_earned=10, order_amount_cents=0, refunded_before_cents=0, refund_cents=0
        )
        == 0
    )


def test_a_refund_beyond_the_order_is_capped_at_the_order() -> None:
    assert (
        rules.reversal_for_refund(
            points_earned=50,
            order_amount_cents=5_000,
            refunded_before_cents=4_000,
            refund_cents=9_000,
        )
        == 10
    )


@st.composite
def order_and_splits(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    amount = draw(st.integers(min_value=1, max_value=10**9))
    earned = draw(st.integers(min_value=0, max_value=10**7))
    cuts = draw(st.lists(st.integers(min_value=1, max_value=amount), max_size=12, unique=True))
    bounds = [0, *sorted(set(cuts) - {amount}), amount]
    parts = [high - low for low, high in pairwise(bounds)]
    return amount, earned, list(draw(st.permutations(parts)))


@settings(max_examples=300)
@given(order_and_splits())
def test_partial_refunds_sum_exactly_to_the_full_reversal(
    case: tuple[int, int, list[int]],
) -> None:
    amount, earned, parts = case
    assert sum(parts) == amount
    full = rules.reversal_for_refund(
        points_earned=earned,
        order_amount_cents=amount,
        refunded_before_cents=0,
        refund_cents=amount,
    )
    before, reversed_total = 0, 0
    for part in parts:
        step = rules.reversal_for_refund(
            points_earned=earned,
            order_amount_cents=amount,
            refunded_before_cents=before,
            refund_cents=part,
        )
        assert step >= 0
        before += part
        reversed_total += step
        # never more than the refunded share, floored: the member keeps the rounding
        assert reversed_total == earned * before // amount
    assert full == earned
    assert reversed_total == full


# --- checkin_points ---


CHECKIN = rules.CheckinRules(base=5, streak_bonus=((7, 20), (30, 100)))


@pytest.mark.parametrize(
    ("streak", "expected"), [(1, 5), (6, 5), (7, 25), (8, 5), (14, 5), (30, 105)]
)
def test_checkin_points_are_the_base_plus_the_bonus_of_that_streak_day(
    streak: int, expected: int
) -> None:
    assert rules.checkin_points(CHECKIN, streak) == expected


def test_checkin_without_a_bonus_table_is_the_base() -> None:
    assert rules.checkin_points(rules.CheckinRules(base=3, streak_bonus=()), 7) == 3
    assert rules.checkin_points(rules.CheckinRules(base=0, streak_bonus=()), 1) == 0


def test_the_default_rules_give_five_a_day_and_twenty_more_on_day_seven() -> None:
    checkin = rules.parse_points_rules(rules.DEFAULT_RULES).checkin
    assert rules.checkin_points(checkin, 1) == 5
    assert rules.checkin_points(checkin, 7) == 25
