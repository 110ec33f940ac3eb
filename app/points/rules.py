"""Pure points arithmetic: earning, expiry dates, which lots a spend takes, refunds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_RULES: dict[str, Any] = {
    "points_per_yuan": 1,
    "signup_bonus": 0,
    "birthday_month_multiplier_pct": 100,
    "checkin": {"base": 5, "streak_bonus": {"7": 20}},
    "expiry": {"kind": "end_of_next_year"},
    "reminder_days_before": 30,
}


# Why an entry exists, as a stable code, and the text a member reads in their history. The
# text never names a person: who made an adjustment is in the audit log only.
class ExpiryKind(StrEnum):
    """When earned points expire (the points rules' ``expiry.kind``)."""

    END_OF_NEXT_YEAR = "end_of_next_year"
    DAYS = "days"  # a fixed number of days after earning


class ReasonCode(StrEnum):
    ORDER = "order"
    REFUND = "refund"
    REDEMPTION = "redemption"
    CHECKIN = "checkin"
    SIGNUP = "signup"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"
    MERGE = "merge"
    DEBT_SETTLEMENT = "debt_settlement"


REASON_TEXTS: dict[str, str] = {
    ReasonCode.ORDER: "订单积分",
    ReasonCode.REFUND: "订单退款",
    ReasonCode.REDEMPTION: "积分抵扣",
    ReasonCode.CHECKIN: "每日签到",
    ReasonCode.SIGNUP: "注册奖励",
    ReasonCode.EXPIRY: "积分过期",
    ReasonCode.ADJUSTMENT: "积分调整",
    ReasonCode.MERGE: "账户合并",
    ReasonCode.DEBT_SETTLEMENT: "退款欠分抵扣",
}


def member_text(reason_code: str) -> str:
    return REASON_TEXTS[reason_code]


def points_for_amount(
    amount_cents: int, *, points_per_yuan: int, tier_pct: int = 100, birthday_pct: int = 100
) -> int:
    """floor(amount_cents / 100 * points_per_yuan * tier% / 100 * birthday% / 100), in integers."""
    if amount_cents <= 0:
        return 0
    return amount_cents * points_per_yuan * tier_pct * birthday_pct // (100 * 100 * 100)


def expiry_for(earned_at: datetime, expiry: dict[str, Any], tz: ZoneInfo) -> datetime:
    """When points earned at ``earned_at`` expire (the first instant they no longer count)."""
    if expiry.get("kind") == ExpiryKind.DAYS:
        return earned_at + timedelta(days=int(expiry["days"]))
    local_year = earned_at.astimezone(tz).year
    return datetime(local_year + 2, 1, 1, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class LotView:
    id: int
    remaining: int


def take_from_lots(lots: Sequence[LotView], points: int) -> tuple[list[tuple[int, int]], int]:
    """Take ``points`` from lots in the order given (soonest expiry first).

    Answers ``([(lot_id, taken), ...], shortfall)``.
    """
    taken: list[tuple[int, int]] = []
    left = points
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            taken.append((lot.id, take))
            left -= take
    return taken, left


def reversal_for_refund(
    *, points_earned: int, order_amount_cents: int, refunded_before_cents: int, refund_cents: int
) -> int:
    """Points a refund takes back: cumulative and floored, so partial refunds add up exactly
    to what a full refund would take."""
    if order_amount_cents <= 0 or points_earned <= 0:
        return 0
    after = min(order_amount_cents, refunded_before_cents + refund_cents)
    due_after = points_earned * after // order_amount_cents
    due_before = points_earned * refunded_before_cents // order_amount_cents
    return due_after - due_before


def checkin_points(checkin: dict[str, Any], streak: int) -> int:
    bonus = dict(checkin.get("streak_bonus") or {}).get(str(streak), 0)
    return int(checkin.get("base", 0)) + int(bonus)
