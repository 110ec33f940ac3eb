"""Pure points arithmetic: earning, expiry dates, which lots a spend takes, refunds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from app.settings.documents import StrictInt, about, parse

# The document as stored and answered when no operator has set one.
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


def expiry_for(earned_at: datetime, expiry: Expiry, tz: ZoneInfo) -> datetime:
    """When points earned at ``earned_at`` expire (the first instant they no longer count)."""
    if expiry.kind == ExpiryKind.DAYS and expiry.days is not None:
        return earned_at + timedelta(days=expiry.days)
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


def checkin_points(checkin: CheckinRules, streak: int) -> int:
    return checkin.base + dict(checkin.streak_bonus).get(streak, 0)


# --- the points rules document ---


@dataclass(frozen=True)
class CheckinRules:
    base: int
    # (streak day, extra points), in the document's order
    streak_bonus: tuple[tuple[int, int], ...]

    def document(self) -> dict[str, Any]:
        return {"base": self.base, "streak_bonus": {str(d): p for d, p in self.streak_bonus}}


@dataclass(frozen=True)
class Expiry:
    kind: ExpiryKind
    days: int | None = None  # with kind DAYS, and only with it

    def document(self) -> dict[str, Any]:
        kind: dict[str, Any] = {"kind": self.kind.value}
        return kind if self.days is None else kind | {"days": self.days}


@dataclass(frozen=True)
class PointsRules:
    """The points rules in force (the ``points_rules`` settings document)."""

    points_per_yuan: int
    signup_bonus: int
    birthday_month_multiplier_pct: int
    checkin: CheckinRules
    expiry: Expiry
    reminder_days_before: int

    def document(self) -> dict[str, Any]:
        """The JSON document, key for key as stored and answered."""
        return {
            "points_per_yuan": self.points_per_yuan,
            "signup_bonus": self.signup_bonus,
            "birthday_month_multiplier_pct": self.birthday_month_multiplier_pct,
            "checkin": self.checkin.document(),
            "expiry": self.expiry.document(),
            "reminder_days_before": self.reminder_days_before,
        }


class CheckinRulesSchema(Schema):
    base = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=100_000),
        metadata=about("Points for every check-in."),
    )
    streak_bonus = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[1-9][0-9]{0,3}$")),
        values=StrictInt(validate=validate.Range(min=0, max=100_000)),
        required=True,
        metadata=about('Extra points on the Nth consecutive day: {"7": 20}.'),
    )

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> CheckinRules:
        bonus = tuple((int(day), points) for day, points in data["streak_bonus"].items())
        return CheckinRules(base=data["base"], streak_bonus=bonus)


class ExpirySchema(Schema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf([kind.value for kind in ExpiryKind]),
        metadata=about(
            "end_of_next_year: points expire at the end of the year after earning; "
            "days: a fixed number of days after earning."
        ),
    )
    days = StrictInt(
        validate=validate.Range(min=1, max=3650),
        metadata=about("Days until expiry; with kind days, and only with it."),
    )

    @validates_schema
    def _days_for_days(self, data: dict[str, Any], **_: Any) -> None:
        if data["kind"] == "days" and "days" not in data:
            raise ValidationError("days is required when kind is days", "days")
        if data["kind"] != "days" and "days" in data:
            raise ValidationError("days applies only when kind is days", "days")

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> Expiry:
        return Expiry(kind=ExpiryKind(data["kind"]), days=data.get("days"))


class PointsRulesSchema(Schema):
    """Validates a points rules document and loads it as ``PointsRules``."""

    points_per_yuan = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=1000),
        metadata=about("Points earned per yuan paid, before the tier multiplier."),
    )
    signup_bonus = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=1_000_000),
        metadata=about("Points given once when a member joins."),
    )
    birthday_month_multiplier_pct = StrictInt(
        required=True,
        validate=validate.Range(min=100, max=1000),
        metadata=about(
            "Order points multiplier in the member's birthday month, percent (100: none)."
        ),
    )
    checkin = fields.Nested(
        CheckinRulesSchema, required=True, metadata=about("Daily check-in points.")
    )
    expiry = fields.Nested(
        ExpirySchema, required=True, metadata=about("When earned points expire.")
    )
    reminder_days_before = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=365),
        metadata=about("Days before expiry to remind the member (0: no reminder)."),
    )

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> PointsRules:
        return PointsRules(**data)


def parse_points_rules(document: Any, key: str = "points_rules") -> PointsRules:
    """A stored (or default) points rules document as ``PointsRules``; an invalid one is
    refused with InvalidSettingsDocument."""
    rules: PointsRules = parse(PointsRulesSchema(), key, document)
    return rules
