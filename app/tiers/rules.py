"""Pure tier logic: windows, which tier a value earns, and what assessment decides.

Upgrades (at an order) and assessments (the job, and the simulation) share ``assess``,
so a simulation answers exactly what the next assessment would do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from app.settings.documents import StrictInt, about, parse


class Metric(StrEnum):
    """What tiers are measured by (the tier policy's ``metric``)."""

    SPEND_CENTS = "spend_cents"
    POINTS_EARNED = "points_earned"


class WindowKind(StrEnum):
    """The assessment window of the tier policy."""

    ROLLING_DAYS = "rolling_days"  # the last N days
    CALENDAR_YEAR = "calendar_year"  # since January 1st


# The document as stored and answered when no operator has set one.
DEFAULT_POLICY: dict[str, Any] = {
    "metric": "spend_cents",
    "window": {"kind": "rolling_days", "days": 365},
    "retention_days": 365,
}


@dataclass(frozen=True)
class Window:
    kind: WindowKind
    days: int | None = None  # with ROLLING_DAYS, and only with it

    def document(self) -> dict[str, Any]:
        kind: dict[str, Any] = {"kind": self.kind.value}
        return kind if self.days is None else kind | {"days": self.days}


@dataclass(frozen=True)
class TierPolicy:
    """How tiers are measured (the ``tier_policy`` settings document)."""

    metric: Metric
    window: Window
    retention_days: int

    def document(self) -> dict[str, Any]:
        """The JSON document, key for key as stored and answered."""
        return {
            "metric": self.metric.value,
            "window": self.window.document(),
            "retention_days": self.retention_days,
        }


class WindowSchema(Schema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf([kind.value for kind in WindowKind]),
        metadata=about("rolling_days: the last N days; calendar_year: since January 1st."),
    )
    days = StrictInt(
        validate=validate.Range(min=1, max=3660),
        metadata=about("N, with rolling_days and only with it."),
    )

    @validates_schema
    def _days(self, data: dict[str, Any], **_: Any) -> None:
        if (data["kind"] == WindowKind.ROLLING_DAYS) != ("days" in data):
            raise ValidationError("days goes with rolling_days, and only with it", "days")

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> Window:
        return Window(kind=WindowKind(data["kind"]), days=data.get("days"))


class TierPolicySchema(Schema):
    """Validates a tier policy document and loads it as ``TierPolicy``."""

    metric = fields.String(
        required=True,
        validate=validate.OneOf([metric.value for metric in Metric]),
        metadata=about("What tiers are measured by: spend_cents or points_earned."),
    )
    window = fields.Nested(WindowSchema, required=True, metadata=about("Over which period."))
    retention_days = StrictInt(
        required=True,
        validate=validate.Range(min=0, max=3660),
        metadata=about("Days a reached tier is kept before a downgrade can happen."),
    )

    @post_load
    def _typed(self, data: dict[str, Any], **_: Any) -> TierPolicy:
        return TierPolicy(
            metric=Metric(data["metric"]),
            window=data["window"],
            retention_days=data["retention_days"],
        )


def parse_tier_policy(document: Any, key: str = "tier_policy") -> TierPolicy:
    """A stored (or default) tier policy document as ``TierPolicy``; an invalid one is
    refused with InvalidSettingsDocument."""
    policy: TierPolicy = parse(TierPolicySchema(), key, document)
    return policy


@dataclass(frozen=True)
class TierRef:
    code: str
    name: str
    rank: int
    threshold: int
    benefits: dict[str, Any]


def window_bounds(window: Window, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the assessment window that contains ``now``."""
    if window.kind == WindowKind.CALENDAR_YEAR:
        year = now.astimezone(tz).year
        return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)
    days = window.days if window.days is not None else 365
    return now - timedelta(days=days), now + timedelta(microseconds=1)


def ladder(tiers: Sequence[TierRef]) -> list[TierRef]:
    return sorted(tiers, key=lambda tier: tier.rank)


def tier_for_value(tiers: Sequence[TierRef], value: int) -> TierRef | None:
    """The highest-ranked tier whose threshold the value reaches."""
    earned = [tier for tier in ladder(tiers) if tier.threshold <= value]
    return earned[-1] if earned else None


def _rank(tier: TierRef | None) -> int:
    return tier.rank if tier is not None else -(2**31)


def upgrade_to(tiers: Sequence[TierRef], current: TierRef | None, value: int) -> TierRef | None:
    """The tier an order lifts the member to, or None when it does not lift them."""
    qualified = tier_for_value(tiers, value)
    return qualified if _rank(qualified) > _rank(current) else None


def assess(
    tiers: Sequence[TierRef],
    current: TierRef | None,
    value: int,
    retain_until: datetime | None,
    now: datetime,
) -> TierRef | None:
    """The tier a member holds after assessment: up at once; down only once retention ran out."""
    qualified = tier_for_value(tiers, value)
    if _rank(qualified) >= _rank(current):
        return qualified
    if retain_until is not None and now < retain_until:
        return current
    return qualified


def growth(tiers: Sequence[TierRef], current: TierRef | None, value: int) -> dict[str, Any]:
    """Progress to the next tier above the current one."""
    above = [tier for tier in ladder(tiers) if tier.rank > _rank(current)]
    nxt = above[0] if above else None
    return {
        "value": value,
        "next_tier": None if nxt is None else {"code": nxt.code, "name": nxt.name},
        "needed": 0 if nxt is None else max(0, nxt.threshold - value),
    }


def with_thresholds(tiers: Sequence[TierRef], thresholds: dict[str, int]) -> list[TierRef]:
    return [
        TierRef(t.code, t.name, t.rank, thresholds.get(t.code, t.threshold), t.benefits)
        for t in tiers
    ]
