"""Tiers in plain SQL, for floors: the member's standing, the lift an order brings.

The app's rules (``app/tiers``): a member without a ``member_tiers`` row holds the base
tier (threshold 0); an order lifts the member at once when the metric (net spend over
the policy's window, this order included) reaches a higher tier's threshold, never
lowers it; a lift writes the ``member_tiers`` row, a ``tier_changes`` row and a
``tier.changed`` event. The ladder and the policy are read once per process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.floors.points import utc_now

DEFAULT_RULES: dict[str, Any] = {"points_per_yuan": 1, "birthday_month_multiplier_pct": 100}
DEFAULT_RULES |= {"expiry": {"kind": "end_of_next_year"}}
DEFAULT_POLICY: dict[str, Any] = {"metric": "spend_cents", "retention_days": 365}
DEFAULT_POLICY |= {"window": {"kind": "rolling_days", "days": 365}}
Tier = dict[str, Any]  # code, name, rank, threshold, benefits
Event = tuple[str, dict[str, Any], int]  # topic, payload, member id


@dataclass(frozen=True)
class Settings:
    """The points rules, the tier policy and the ladder (by rank), read once per process."""

    rules: dict[str, Any]
    policy: dict[str, Any]
    ladder: list[Tier]
    tz: ZoneInfo

    def standing(self, tier_code: str | None, has_row: bool) -> Tier | None:
        """The member's tier: the recorded one (None if unknown), else the base tier."""
        if has_row:
            return next((tier for tier in self.ladder if tier["code"] == tier_code), None)
        reached = [tier for tier in self.ladder if tier["threshold"] <= 0]
        return reached[-1] if reached else None

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        window = self.policy["window"]
        if window["kind"] == "calendar_year":
            year = now.astimezone(self.tz).year
            return datetime(year, 1, 1, tzinfo=self.tz), datetime(year + 1, 1, 1, tzinfo=self.tz)
        return now - timedelta(days=int(window["days"])), now + timedelta(microseconds=1)


def load_settings(cursor: Any, tz: ZoneInfo) -> Settings:
    cursor.execute("SELECT `key`, value FROM settings_documents")
    stored = {key: json.loads(value) for key, value in cursor.fetchall()}
    cursor.execute("SELECT code, name, `rank`, threshold, benefits FROM tiers ORDER BY `rank`")
    ladder = [
        {"code": c, "name": n, "rank": r, "threshold": t, "benefits": json.loads(b)}
        for c, n, r, t, b in cursor.fetchall()
    ]
    policy = stored.get("tier_policy", DEFAULT_POLICY)
    if policy["metric"] != "spend_cents":
        raise NotImplementedError("the floor measures tiers by spend_cents only")
    return Settings(stored.get("points_rules", DEFAULT_RULES), policy, ladder, tz)


def naive_utc(*moments: datetime) -> list[datetime]:
    return [moment.astimezone(UTC).replace(tzinfo=None) for moment in moments]


def view(tier: Tier | None) -> dict[str, Any] | None:
    return None if tier is None else {k: tier[k] for k in ("code", "name", "benefits")}


def lift(
    cursor: Any,
    settings: Settings,
    member_id: int,
    *,
    current: Tier | None,
    amount: int,
    paid_at: datetime,
    spent: int | None = None,
) -> tuple[Tier | None, int]:
    """The tier this order lifts the member to (None: not lifted) and the metric value
    with the order in. ``spent`` is the net spend before it when the intake read it; else
    it is read here, unless the member is at the top of the ladder (nothing can change)."""
    rank = current["rank"] if current else -(2**31)
    if spent is None and not any(tier["rank"] > rank for tier in settings.ladder):
        return None, 0
    start, end = settings.window(datetime.now(UTC))
    if spent is None:
        cursor.execute(
            "SELECT COALESCE(SUM(amount_cents - refunded_cents), 0) FROM orders "
            "WHERE member_id = %s AND paid_at >= %s AND paid_at < %s",
            (member_id, *naive_utc(start, end)),
        )
        spent = int(cursor.fetchone()[0])
    value = spent + (amount if start <= paid_at < end else 0)
    qualified = [tier for tier in settings.ladder if tier["threshold"] <= value]
    if not qualified or qualified[-1]["rank"] <= rank:
        return None, value
    return qualified[-1], value


def change_tier(
    cursor: Any,
    settings: Settings,
    member_id: int,
    *,
    before: Tier | None,
    target: Tier,
    value: int,
    reason: str,
) -> Event:
    """Write the lift; answers the ``tier.changed`` event for the caller's outbox insert."""
    now = utc_now()
    retain = now + timedelta(days=int(settings.policy["retention_days"]))
    cursor.execute(
        "INSERT INTO member_tiers (member_id, tier_code, achieved_at, retain_until) "
        "VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE tier_code = VALUES(tier_code), "
        "achieved_at = VALUES(achieved_at), retain_until = VALUES(retain_until)",
        (member_id, target["code"], now, retain),
    )
    from_code = before["code"] if before else None
    cursor.execute(
        "INSERT INTO tier_changes (member_id, from_code, to_code, reason, metric_value, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (member_id, from_code, target["code"], reason, value, now),
    )
    payload = {"member_id": member_id, "from": from_code, "to": target["code"]}
    payload |= {"reason": reason, "tier_change_id": int(cursor.lastrowid)}
    return "tier.changed", payload, member_id
