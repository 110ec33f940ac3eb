"""The row check: the floor leaves the app's rows, or nothing is measured.

Each case sets up two members identically (one for the app, one for the floor: the same
lots, debt, tier, earlier spend, birthday), sends both servers the same logical requests
(the same bodies but for the card number and a per-server prefix in the external ids),
then reads every row the requests could have touched and compares them column by column.
Left out are ids, timestamps and nonces only: ids become labels (the member ``M``, its
orders ``O1``..., entries ``E1``..., tier changes ``T1``...) wherever they appear, in
JSON answers and payloads and in strings such as ``order:<id>``. Fingerprints and
Idempotency-Key request hashes differ (the card does), so each side's is checked against
the spec's (``bench.floors.protocol``) on the request it was sent. The answers (status,
body, ``Idempotent-Replayed``) are compared the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.floors import protocol
from bench.floors.open_api_input import parse_order, parse_redeem
from bench.harness.server import Server
from bench.open_api.scenarios import ORDERS, REDEEM, SHANGHAI, Requests

SIDES = ("app", "floor")
Lot = tuple[int, timedelta]  # points, expiry relative to now (negative: already expired)


class RowCheckFailed(RuntimeError):
    """The floor's rows are not the app's: the floor is wrong, or the app changed."""


@dataclass(frozen=True)
class Step:
    path: str  # ORDERS or REDEEM
    body: Callable[[str, str], dict[str, Any]]  # (card_no, external id prefix) -> document
    status: int
    key: str | None = None  # an Idempotency-Key (prefixed per side)


@dataclass(frozen=True)
class Case:
    name: str
    steps: Sequence[Step]
    lots: Sequence[Lot] = ()
    account: bool = True
    debt: int = 0
    tier: str | None = None
    prior_spend: int = 0  # cents of an earlier order in the tier window
    birthday_now: bool = False


def order(amount: int, lines: int = 2, suffix: str = "") -> Callable[[str, str], dict[str, Any]]:
    def body(card: str, prefix: str) -> dict[str, Any]:
        each = amount // lines
        items = [
            {"sku": f"SKU-{n}", "name": f"品 {n}", "category": "tea", "quantity": 1}
            | {"amount_cents": each + (amount - each * lines if n == 0 else 0)}
            for n in range(lines)
        ]
        return {
            "channel": "pos",
            "external_id": f"{prefix}-order{suffix}",
            "member": {"card_no": card},
            "store_code": "SH0001",
            "paid_at": PAID_AT,
            "amount_cents": amount,
            "items": items,
        }

    return body


def spend(points: int, suffix: str = "") -> Callable[[str, str], dict[str, Any]]:
    def body(card: str, prefix: str) -> dict[str, Any]:
        document = {"member": {"card_no": card}, "points": points}
        return document | {"external_id": f"{prefix}-spend{suffix}", "store_code": "SH0001"}

    return body


PAID_AT = datetime.now(UTC).replace(microsecond=0).astimezone(SHANGHAI).isoformat()
YEAR, EXPIRED = timedelta(days=300), timedelta(days=-1)
CASES = (
    Case("order, member with a points account", [Step(ORDERS, order(12_345), 201)], [(100, YEAR)]),
    Case(
        "order, member's first (no account yet)", [Step(ORDERS, order(8_800), 201)], account=False
    ),
    Case(
        "order lifting the member to silver",
        [Step(ORDERS, order(1_000, 1), 201)],
        [(100, YEAR)],
        prior_spend=199_500,
    ),
    Case("order, silver member (120 %)", [Step(ORDERS, order(10_000), 201)], tier="silver"),
    Case(
        "order in the member's birthday month (200 %)",
        [Step(ORDERS, order(10_000), 201)],
        birthday_now=True,
    ),
    Case("order settling a debt", [Step(ORDERS, order(10_000), 201)], debt=30),
    Case(
        "order, an expired lot written off",
        [Step(ORDERS, order(5_000), 201)],
        [(20, EXPIRED), (50, YEAR)],
    ),
    Case("order of 0 cents (no points)", [Step(ORDERS, order(0, 1), 201)]),
    Case(
        "order, replayed, then its id with another body",
        [
            Step(ORDERS, order(4_200), 201),
            Step(ORDERS, order(4_200), 200),
            Step(ORDERS, order(4_300), 409),
        ],
    ),
    Case(
        "order with an Idempotency-Key, then the key again",
        [Step(ORDERS, order(3_000), 201, key="k"), Step(ORDERS, order(3_000), 201, key="k")],
    ),
    Case("redemption, one lot", [Step(REDEEM, spend(3), 201)], [(100, YEAR)]),
    Case(
        "redemption across lots, soonest expiry first",
        [Step(REDEEM, spend(4), 201)],
        [(50, timedelta(days=30)), (2, timedelta(days=10)), (3, timedelta(days=20))],
    ),
    Case(
        "redemption, an expired lot written off",
        [Step(REDEEM, spend(5), 201)],
        [(20, EXPIRED), (50, YEAR)],
    ),
    Case("redemption short of points", [Step(REDEEM, spend(5), 409)], [(2, YEAR)]),
    Case(
        "redemption replayed, then its id with another amount",
        [Step(REDEEM, spend(3), 201), Step(REDEEM, spend(3), 200), Step(REDEEM, spend(4), 409)],
        [(100, YEAR)],
    ),
    Case(
        "redemption with an Idempotency-Key, then the key again",
        [Step(REDEEM, spend(3), 201, key="k"), Step(REDEEM, spend(3), 201, key="k")],
        [(100, YEAR)],
    ),
    Case(
        "redemption short of points with an Idempotency-Key, then the key again",
        [Step(REDEEM, spend(5), 409, key="k"), Step(REDEEM, spend(5), 409, key="k")],
        [(2, YEAR)],
    ),
    Case(
        "redemption, member with 100 open lots",
        [Step(REDEEM, spend(15), 201)],
        [(10, timedelta(days=30 + n)) for n in range(100)],
    ),
)


@dataclass
class Side:
    """One server's member in one case, and what it was answered."""

    name: str
    member_id: int
    card: str
    prefix: str
    answers: list[tuple[int, Any, bool]] = field(default_factory=list)
    sent: list[tuple[Step, dict[str, Any], bytes, str | None]] = field(default_factory=list)


def set_up(cursor: Any, case: Case, side: Side, now: datetime) -> None:
    """The case's starting state for this side's member, in plain SQL, as the ledger
    would have it."""
    naive = now.replace(tzinfo=None)
    birthday = now.date().replace(year=1990, day=1) if case.birthday_now else None
    cursor.execute("UPDATE members SET birthday = %s WHERE id = %s", (birthday, side.member_id))
    balance = 0
    for n, (points, offset) in enumerate(case.lots):
        balance += points
        cursor.execute(
            "INSERT INTO points_entries (member_id, delta, kind, reason_code, reason, note, "
            "balance_after, idempotency_key, created_at) VALUES (%s, %s, 'adjust', "
            "'adjustment', '积分调整', 'check set-up', %s, %s, %s)",
            (side.member_id, points, balance, f"{side.prefix}-setup-{n}", naive),
        )
        cursor.execute(
            "INSERT INTO points_lots (member_id, entry_id, order_id, points, remaining, expired, "
            "earned_at, expires_at) VALUES (%s, %s, NULL, %s, %s, 0, %s, %s)",
            (side.member_id, cursor.lastrowid, points, points, naive, naive + offset),
        )
    if case.account or case.lots or case.debt:
        cursor.execute(
            "INSERT INTO points_accounts (member_id, balance, debt, updated_at) "
            "VALUES (%s, %s, %s, %s)",
            (side.member_id, balance, case.debt, naive),
        )
    if case.tier:
        cursor.execute(
            "INSERT INTO member_tiers (member_id, tier_code, achieved_at, retain_until) "
            "VALUES (%s, %s, %s, %s)",
            (side.member_id, case.tier, naive, naive + YEAR),
        )
    if case.prior_spend:
        cursor.execute(
            "INSERT INTO orders (partner_id, channel, external_id, member_id, store_code, "
            "paid_at, amount_cents, refunded_cents, points_earned, points_reversed, created_at) "
            "VALUES (NULL, 'pos', %s, %s, NULL, %s, %s, 0, 0, 0, %s)",
            (
                f"{side.prefix}-prior",
                side.member_id,
                naive - timedelta(days=10),
                case.prior_spend,
                naive,
            ),
        )


def send(requests: Requests, server: Server, side: Side, n: int, step: Step) -> None:
    document = step.body(side.card, side.prefix)
    key = f"{side.prefix}-{step.key}" if step.key else None
    request = requests.signed(step.path, document, f"{side.prefix}-n{n}", key=key)
    answered = server.call(request)
    body = json.loads(answered.body) if answered.body else None
    replayed = answered.header("Idempotent-Replayed") == "true"
    side.answers.append((answered.status, body, replayed))
    side.sent.append((step, document, request.body, key))


SNAPSHOT = {  # table -> (query on the member, columns compared)
    "points_accounts": "SELECT balance, debt FROM points_accounts WHERE member_id = %s",
    "points_entries": "SELECT id, delta, kind, reason_code, reason, note, balance_after, "
    "idempotency_key, order_id FROM points_entries WHERE member_id = %s ORDER BY id",
    "points_lots": "SELECT entry_id, order_id, points, remaining, expired, expires_at "
    "FROM points_lots WHERE member_id = %s ORDER BY id",
    "orders": "SELECT id, partner_id, channel, external_id, store_code, paid_at, amount_cents, "
    "refunded_cents, points_earned, points_reversed, tier_after, coupon_codes "
    "FROM orders WHERE member_id = %s ORDER BY id",
    "order_items": "SELECT i.order_id, i.sku, i.name, i.category, i.brand, i.quantity, "
    "i.amount_cents FROM order_items i JOIN orders o ON o.id = i.order_id "
    "WHERE o.member_id = %s ORDER BY i.id",
    "member_tiers": "SELECT tier_code, DATE(retain_until) FROM member_tiers WHERE member_id = %s",
    "tier_changes": "SELECT id, from_code, to_code, reason, metric_value FROM tier_changes "
    "WHERE member_id = %s ORDER BY id",
    "outbox": "SELECT topic, payload, attempts, leased_until, lease_owner, handled_at, dead_at, "
    "last_error FROM outbox WHERE member_id = %s ORDER BY id",
    "external_requests": "SELECT kind, channel, external_id, fingerprint, answer "
    "FROM external_requests WHERE external_id LIKE %s ORDER BY id",
    "idempotency_records": "SELECT `key`, request_hash, state, status_code, response_body "
    "FROM idempotency_records WHERE `key` LIKE %s ORDER BY id",
}
JSON_COLUMNS = {"tier_after", "coupon_codes", "payload", "answer", "response_body"}


class Labels:
    """Ids to labels for one side: M, O1, E1, T1 in the order the rows were made."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.ids: dict[str, dict[int, str]] = {"member": {side.member_id: "M"}}

    def learn(self, kind: str, ids: Sequence[int]) -> None:
        self.ids[kind] = {value: f"{kind[0].upper()}{n}" for n, value in enumerate(ids, 1)}

    def label(self, kind: str, value: Any) -> Any:
        return (
            self.ids.get(kind, {}).get(value, f"<{kind} {value}?>") if value is not None else None
        )

    def text(self, value: str) -> str:
        value = value.replace(self.side.prefix, "<side>").replace(self.side.card, "<card>")
        value = re.sub(r"order:(\d+)", lambda m: f"order:{self.label('order', int(m[1]))}", value)
        return re.sub(r"^order (\d+)$", lambda m: f"order {self.label('order', int(m[1]))}", value)

    def json(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(item) for item in value]
        return self.text(value) if isinstance(value, str) else value

    def _field(self, key: str, value: Any) -> Any:
        kinds = {
            "member_id": "member",
            "order_id": "order",
            "tier_change_id": "tier",
            "entry_id": "entry",
        }
        return self.label(kinds[key], value) if key in kinds else self.json(value)


Rows = dict[str, list[tuple[Any, ...]]]


def snapshot(cursor: Any, side: Side) -> tuple[Rows, Labels]:
    """Every row the side's requests could have touched, normalised, and the labels."""
    found: dict[str, list[dict[str, Any]]] = {}
    cursor.execute("SHOW COLUMNS FROM points_entries LIKE 'request_fingerprint'")
    entry_records = cursor.fetchone() is not None  # a till spend's record on its entry
    for table, select in SNAPSHOT.items():
        query = select
        if table == "points_entries" and entry_records:
            query = select.replace("order_id FROM", "order_id, request_fingerprint FROM")
        argument: Any = side.member_id
        if table in ("external_requests", "idempotency_records"):
            argument = f"{side.prefix}-%"
        cursor.execute(query, (argument,))
        names = [column[0] for column in cursor.description]
        found[table] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    labels = Labels(side)
    labels.learn("order", [row["id"] for row in found["orders"]])
    labels.learn("entry", [row["id"] for row in found["points_entries"]])
    labels.learn("tier", [row["id"] for row in found["tier_changes"]])
    rows = {table: [normal(labels, side, row) for row in found[table]] for table in found}
    return rows, labels


def normal(labels: Labels, side: Side, row: dict[str, Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for column, value in row.items():
        if column == "id":
            continue
        if column in ("order_id", "entry_id"):
            out.append((column, labels.label(column[:-3], value)))
        elif column in ("fingerprint", "request_fingerprint") and value is not None:
            out.append((column, _expected(side, value, "fingerprint")))
        elif column == "request_hash":
            out.append((column, _expected(side, value, "request_hash")))
        elif column in JSON_COLUMNS and value is not None:
            out.append((column, labels.json(json.loads(value))))
        elif isinstance(value, str):
            out.append((column, labels.text(value)))
        else:
            out.append((column, value))
    return tuple(out)


def _expected(side: Side, value: str, what: str) -> str:
    """Whether this side's fingerprint / request hash is the spec's for a request sent."""
    for step, document, body, key in side.sent:
        if what == "fingerprint":
            parsed = parse_order(document) if step.path == ORDERS else parse_redeem(document)
            if protocol.fingerprint(parsed) == value:
                return "<the spec's fingerprint>"
        elif key is not None and protocol.request_hash("POST", step.path, b"", body) == value:
            return "<the spec's request hash>"
    return f"<NOT the spec's {what}: {value}>"


def compare(case: Case, app: Side, floor: Side, cursor: Any) -> list[str]:
    differences = []
    (left, app_labels), (right, floor_labels) = snapshot(cursor, app), snapshot(cursor, floor)
    for n, (ours, theirs) in enumerate(zip(app.answers, floor.answers, strict=True), 1):
        a = (ours[0], app_labels.json(ours[1]), ours[2])
        f = (theirs[0], floor_labels.json(theirs[1]), theirs[2])
        expected = case.steps[n - 1].status
        if a != f or a[0] != expected:
            differences.append(f"answer {n} (expected {expected}): app {a} / floor {f}")
    for table in SNAPSHOT:
        if left[table] != right[table]:
            differences.append(f"{table}: app {left[table]} / floor {right[table]}")
        elif "NOT the spec" in repr(left[table]):
            differences.append(f"{table}: {left[table]}")
    return differences


def run_check(
    requests: Requests,
    servers: Mapping[str, Server],
    cursor: Any,
    members: Sequence[tuple[int, str]],
) -> list[str]:
    """Every case, both sides; raises RowCheckFailed listing every difference."""
    if len(members) < 2 * len(CASES):
        raise RuntimeError("not enough members reserved for the row check")
    failures, now = [], datetime.now(UTC)
    for index, case in enumerate(CASES):
        sides = [
            Side(name, *members[2 * index + k], prefix=f"{requests.run}c{index}{name[0]}")
            for k, name in enumerate(SIDES)
        ]
        for side in sides:
            set_up(cursor, case, side, now)
        for side in sides:
            for n, step in enumerate(case.steps):
                send(requests, servers[side.name], side, n, step)
        failures += [f"{case.name}: {d}" for d in compare(case, sides[0], sides[1], cursor)]
    if failures:
        raise RowCheckFailed("the floor's rows differ from the app's:\n" + "\n".join(failures))
    return [
        f"{len(CASES)} cases, each on two identically prepared members, one per server; "
        "answers and rows equal (ids, timestamps and nonces aside), fingerprints and "
        "request hashes the spec's:",
        *(f"{case.name} ({', '.join(str(s.status) for s in case.steps)})" for case in CASES),
    ]
