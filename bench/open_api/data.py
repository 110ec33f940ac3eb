"""The open-API benchmark's world: a brand's settings, a partner and 10,000 members.

Settings go through the app's own services (the ladder, the points rules, the partner
and its encrypted secret), members through its demo seeder. Points are put in with bulk
SQL, each member's rows as the ledger would have them (an entry per lot, the balance
after it, the account), because 200,000 lots through the service would take minutes.

Members are split by what the scenarios need, so that no scenario disturbs another's:
``funded`` members hold one lot of 5,000 points (redemptions), ``lots`` members hold 100
lots of 100 points (the 100-open-lots redemption), the order pool gets orders (each has
an empty account already, so every order takes the common path), and the last
``CHECK_MEMBERS`` are the row check's, set up by ``bench/open_api/check.py``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness.database import Scratch, highest_id

CHANNEL, STORE = "pos", "SH0001"
FUNDED_POINTS = 5_000
LOTS, LOT_POINTS = 100, 100
CHECK_MEMBERS = 64
SEED = 20_240_601
TIERS = (  # a ladder like a real brand's, so every order runs the tier check
    {"code": "member", "name": "会员", "rank": 0, "threshold": 0, "benefits": {}},
    {
        "code": "silver",
        "name": "银卡",
        "rank": 1,
        "threshold": 200_000,
        "benefits": {"points_multiplier_pct": 120},
    },
    {
        "code": "gold",
        "name": "金卡",
        "rank": 2,
        "threshold": 1_000_000,
        "benefits": {"points_multiplier_pct": 150},
    },
)
POINTS_RULES = {  # the defaults, but a birthday month doubles: the check exercises it
    "points_per_yuan": 1,
    "signup_bonus": 0,
    "birthday_month_multiplier_pct": 200,
    "checkin": {"base": 5, "streak_bonus": {"7": 20}},
    "expiry": {"kind": "end_of_next_year"},
    "reminder_days_before": 30,
}


@dataclass(frozen=True)
class Fixture:
    app_key: str
    app_secret: str
    partner_id: int
    order_cards: tuple[str, ...]
    funded_cards: tuple[str, ...]
    lots_cards: tuple[str, ...]
    check_members: tuple[tuple[int, str], ...]  # (id, card_no)
    entries_after: int = 0  # the highest ledger entry id once the data is in


def build_app(scratch: Scratch, env: dict[str, str]) -> Any:
    """The app in this process, on the scratch database (data, in-process measurement).
    Its log lines go nowhere but are still formatted: their cost stays in the timing."""
    from app import create_app
    from app.config import Config

    app = create_app(Config.from_env(env))
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the app
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    return app


def end_of_next_year(now: datetime, tz: ZoneInfo) -> datetime:
    return datetime(now.astimezone(tz).year + 2, 1, 1, tzinfo=tz).astimezone(UTC)


def prepare(app: Any, scratch: Scratch, *, members: int, funded: int, lots: int) -> Fixture:
    """Migrate, configure through the services, seed members, put their points in."""
    from app.admins.operations import CLI
    from app.members.demo import seed_members
    from app.migrate import upgrade_database
    from app.partners import services as partners
    from app.points import services as points
    from app.points.rules import parse_points_rules
    from app.tiers import services as tiers

    deps = app.extensions["huiyuan"]
    upgrade_database(deps.engine)
    points.put_points_rules(uow=deps.uow(), actor=CLI, rules=parse_points_rules(POINTS_RULES))
    for tier in TIERS:
        tiers.create_tier(uow=deps.uow(), actor=CLI, fields=dict(tier))
    credentials = partners.create_partner(
        uow=deps.uow(), actor=CLI, name="Bench POS", secret_key=deps.config.secret_key, trusted=True
    )
    seed_members(deps.engine, count=members, seed=SEED)
    with scratch.cursor() as cursor:
        cursor.execute("SELECT id FROM partners WHERE app_key = %s", (credentials.app_key,))
        partner_id = int(cursor.fetchone()[0])
        cursor.execute("SELECT id, card_no FROM members ORDER BY id")
        rows = [(int(member_id), str(card)) for member_id, card in cursor.fetchall()]
        groups = _split(rows, funded, lots)
        tz = ZoneInfo(deps.config.timezone)
        _fund(cursor, groups["funded"], 1, FUNDED_POINTS, tz)
        _fund(cursor, groups["lots"], LOTS, LOT_POINTS, tz)
        _empty_accounts(cursor, [member_id for member_id, _ in groups["orders"]])
        entries_after = highest_id(cursor, "points_entries")
    return Fixture(
        app_key=credentials.app_key,
        app_secret=credentials.app_secret,
        partner_id=partner_id,
        order_cards=tuple(card for _, card in groups["orders"]),
        funded_cards=tuple(card for _, card in groups["funded"]),
        lots_cards=tuple(card for _, card in groups["lots"]),
        check_members=tuple(groups["check"]),
        entries_after=entries_after,
    )


def _split(rows: list[tuple[int, str]], funded: int, lots: int) -> dict[str, list[Any]]:
    if funded + lots + CHECK_MEMBERS + 100 > len(rows):
        raise SystemExit("need more members than --funded + --lots-members + 164")
    return {
        "funded": rows[:funded],
        "lots": rows[funded : funded + lots],
        "orders": rows[funded + lots : -CHECK_MEMBERS],
        "check": rows[-CHECK_MEMBERS:],
    }


def _fund(
    cursor: Any, members: list[tuple[int, str]], lots: int, points: int, tz: ZoneInfo
) -> None:
    """``lots`` lots of ``points`` each per member, soonest first an hour apart: the
    entries (one per lot, with the balance after it), the lots, the account."""
    if not members:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    expires = end_of_next_year(datetime.now(UTC), tz).replace(tzinfo=None)
    entries = [
        (
            member_id,
            points,
            "adjust",
            "adjustment",
            "积分调整",
            "benchmark funding",
            points * (k + 1),
            f"bench-funding:{member_id}:{k}",
            now,
        )
        for member_id, _ in members
        for k in range(lots)
    ]
    for start in range(0, len(entries), 5_000):
        cursor.executemany(
            "INSERT INTO points_entries (member_id, delta, kind, reason_code, reason, note, "
            "balance_after, idempotency_key, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            entries[start : start + 5_000],
        )
    first, last = members[0][0], members[-1][0]
    cursor.execute(
        "SELECT id, member_id, balance_after FROM points_entries "
        "WHERE member_id BETWEEN %s AND %s AND idempotency_key LIKE 'bench-funding:%%'",
        (first, last),
    )
    lot_rows = [
        (member_id, entry_id, points, points, now, expires + timedelta(hours=after // points - 1))
        for entry_id, member_id, after in cursor.fetchall()
    ]
    for start in range(0, len(lot_rows), 5_000):
        cursor.executemany(
            "INSERT INTO points_lots (member_id, entry_id, order_id, points, remaining, expired, "
            "earned_at, expires_at) VALUES (%s, %s, NULL, %s, %s, 0, %s, %s)",
            lot_rows[start : start + 5_000],
        )
    cursor.executemany(
        "INSERT INTO points_accounts (member_id, balance, debt, updated_at) VALUES (%s, %s, 0, %s)",
        [(member_id, lots * points, now) for member_id, _ in members],
    )


def _empty_accounts(cursor: Any, member_ids: list[int]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    cursor.executemany(
        "INSERT INTO points_accounts (member_id, balance, debt, updated_at) VALUES (%s, 0, 0, %s)",
        [(member_id, now) for member_id in member_ids],
    )
