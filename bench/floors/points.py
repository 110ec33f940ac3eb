"""The points ledger in plain SQL, for floors: every path that moves points (orders, till
redemption, and later mall redemptions and lottery draws) leaves these rows.

The rules are the app's (``app/points``): the member's account row is locked first and
serialises every change; what has expired leaves the balance as one ``expire`` entry
before anything else is counted; an earning is a new lot and settles a debt first; a
spend takes from the lots that expire soonest, and reads only as many of them as it may
take (each open lot holds at least one point, so a spend of p points needs at most p).
Every change is one ``points_entries`` row with the balance after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.floors.kit import RaceLost, Refused

# What the member reads for each reason code (the app's points rules).
REASONS = {
    "order": "订单积分",
    "redemption": "积分抵扣",
    "expiry": "积分过期",
    "debt_settlement": "退款欠分抵扣",
}
DEBT_NOTE = "settles points owed by an earlier refund"
LOTS_PER_READ = 16


def utc_now() -> datetime:
    """Naive UTC with microseconds, as the app stores every time."""
    return datetime.now(UTC).replace(tzinfo=None)


def expiry_for(earned_at: datetime, expiry: dict[str, Any], tz: ZoneInfo) -> datetime:
    """When points earned at ``earned_at`` (naive UTC) expire, by the points rules."""
    if expiry.get("kind") == "days" and expiry.get("days"):
        return earned_at + timedelta(days=int(expiry["days"]))
    year = earned_at.replace(tzinfo=UTC).astimezone(tz).year
    return datetime(year + 2, 1, 1, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


@dataclass
class Account:
    member_id: int
    balance: int
    debt: int


def lock_account(cur: Any, member_id: int, *, create: bool) -> Account | None:
    """The member's account row, locked; created first when ``create`` (an earning)."""
    select = "SELECT balance, debt FROM points_accounts WHERE member_id = %s FOR UPDATE"
    cur.execute(select, (member_id,))
    row = cur.fetchone()
    if row is None and create:
        cur.execute(  # queues behind a concurrent creator instead of deadlocking with it
            "INSERT INTO points_accounts (member_id, balance, debt, updated_at) "
            "VALUES (%s, 0, 0, %s) ON DUPLICATE KEY UPDATE member_id = member_id",
            (member_id, utc_now()),
        )
        cur.execute(select, (member_id,))
        row = cur.fetchone()
    return None if row is None else Account(member_id, int(row[0]), int(row[1]))


def refuse_merged(cur: Any, member_id: int) -> None:
    """A merge commits holding the account's lock: read after taking it, the member row
    says whether the member was merged meanwhile (then the whole request runs again)."""
    cur.execute("SELECT merged_into_id FROM members WHERE id = %s", (member_id,))
    row = cur.fetchone()
    if row is not None and row[0] is not None:
        raise RaceLost(f"member {member_id} was merged into {row[0]}")


def insert_entry(
    cur: Any,
    account: Account,
    delta: int,
    *,
    kind: str,
    reason_code: str,
    note: str | None = None,
    order_id: int | None = None,
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
) -> int:
    """Move the locked account's balance by ``delta`` and record it as one entry (a till
    spend's entry carries its request's fingerprint: it is that request's record)."""
    account.balance += delta
    if account.balance < 0:
        raise AssertionError("a points balance may never go negative")
    columns = "member_id, delta, kind, reason_code, reason, note, balance_after, "
    columns += "idempotency_key, order_id, created_at"
    values = [
        account.member_id,
        delta,
        kind,
        reason_code,
        REASONS[reason_code],
        note[:255] if note is not None else None,
        account.balance,
        idempotency_key,
        order_id,
        utc_now(),
    ]
    if request_fingerprint is not None:
        columns += ", request_fingerprint"
        values.append(request_fingerprint)
    marks = ", ".join(["%s"] * len(values))
    cur.execute(f"INSERT INTO points_entries ({columns}) VALUES ({marks})", values)  # noqa: S608 - fixed column names
    return int(cur.lastrowid)


def save_account(cur: Any, account: Account) -> None:
    cur.execute(
        "UPDATE points_accounts SET balance = %s, debt = %s, updated_at = %s WHERE member_id = %s",
        (account.balance, account.debt, utc_now(), account.member_id),
    )


def write_off_expired(cur: Any, account: Account, now: datetime) -> None:
    """What is left of lots past their expiry leaves the balance as one ``expire`` entry.
    The index on (member_id, expires_at) makes this an empty range read when none has."""
    cur.execute(
        "SELECT id, remaining FROM points_lots "
        "WHERE member_id = %s AND remaining > 0 AND expires_at <= %s",
        (account.member_id, now),
    )
    rows = cur.fetchall()
    total = sum(int(remaining) for _, remaining in rows)
    if not total:
        return
    ids = [int(lot_id) for lot_id, _ in rows]
    marks = ", ".join(["%s"] * len(ids))
    cur.execute(
        f"UPDATE points_lots SET expired = expired + remaining, remaining = 0 "  # noqa: S608 - placeholders only
        f"WHERE id IN ({marks})",
        ids,
    )
    insert_entry(cur, account, -total, kind="expire", reason_code="expiry")


def earn(
    cur: Any,
    account: Account,
    points: int,
    *,
    expires_at: datetime,
    reason_code: str,
    note: str | None,
    order_id: int | None,
    idempotency_key: str | None,
) -> None:
    """A new lot and its entry; an outstanding debt is settled first, as its own entry.
    The caller has written off what expired and saves the account afterwards."""
    entry_id = insert_entry(
        cur,
        account,
        points,
        kind="earn",
        reason_code=reason_code,
        note=note,
        order_id=order_id,
        idempotency_key=idempotency_key,
    )
    settled = min(account.debt, points)
    now = utc_now()
    cur.execute(
        "INSERT INTO points_lots (member_id, entry_id, order_id, points, remaining, expired, "
        "earned_at, expires_at) VALUES (%s, %s, %s, %s, %s, 0, %s, %s)",
        (account.member_id, entry_id, order_id, points, points - settled, now, expires_at),
    )
    if settled:
        account.debt -= settled
        insert_entry(
            cur,
            account,
            -settled,
            kind="reverse",
            reason_code="debt_settlement",
            note=DEBT_NOTE,
            order_id=order_id,
        )


def _open_lots(cur: Any, member_id: int, limit: int, after: tuple[Any, int] | None) -> list[Any]:
    if after is None:
        cur.execute(
            "SELECT id, remaining, expires_at FROM points_lots "
            "WHERE member_id = %s AND remaining > 0 ORDER BY expires_at, id LIMIT %s",
            (member_id, limit),
        )
    else:
        cur.execute(
            "SELECT id, remaining, expires_at FROM points_lots "
            "WHERE member_id = %s AND remaining > 0 AND (expires_at > %s OR "
            "(expires_at = %s AND id > %s)) ORDER BY expires_at, id LIMIT %s",
            (member_id, after[0], after[0], after[1], limit),
        )
    return list(cur.fetchall())


Lot = tuple[int, int, datetime]  # id, remaining, expires_at


def spend(
    cur: Any,
    account: Account,
    points: int,
    *,
    soonest: Lot | None = None,
    soonest_read: bool = False,
) -> None:
    """Take ``points`` from the open lots that expire first; InsufficientPoints (409) when
    the balance, after what expired, is short. With ``soonest_read``, the read that locked
    the account fetched the soonest open lot (``soonest``; None: there is none), and a
    spend that lot covers reads no lot at all; otherwise lots are read a few at a time."""
    now = utc_now()
    if soonest_read:
        lots = [soonest] if soonest is not None else []
    else:
        lots = _open_lots(cur, account.member_id, min(points, LOTS_PER_READ), None)
    if any(expires_at <= now for _, _, expires_at in lots):  # rare: write them all off
        write_off_expired(cur, account, now)
        lots = _open_lots(cur, account.member_id, min(points, LOTS_PER_READ), None)
    if account.balance < points:
        raise Refused(
            409,
            "insufficient_points",
            "Not enough points.",
            balance=account.balance,
            requested=points,
        )
    left = points
    while left > 0:
        if not lots:
            raise AssertionError("open lots disagree with the balance")
        for lot_id, remaining, _ in lots:
            take = min(int(remaining), left)
            cur.execute(
                "UPDATE points_lots SET remaining = remaining - %s WHERE id = %s", (take, lot_id)
            )
            left -= take
            if left == 0:
                break
        if left:
            last = lots[-1]
            after = (last[2], last[0])
            lots = _open_lots(cur, account.member_id, min(left, LOTS_PER_READ), after)
