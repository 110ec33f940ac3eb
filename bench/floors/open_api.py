"""The floor of the open API's two hot paths: order ingestion and till redemption.

    gunicorn 'bench.floors.open_api:create_app()'      (the bench starts it: bench/README.md)

The same requests as ``POST /open/v1/orders`` and ``POST /open/v1/points/redeem``, the
same answers and the same rows, in plain SQL on plain PyMySQL connections
(``bench.floors.kit``): the signature and the nonce checked as the app checks them, then
one transaction. The bench's row check (``bench/open_api/check.py``) proves the rows are
the app's before anything is measured.

Each path starts with one locking read, its *intake*: the member by card, their row and
their points account locked together (members before points, the app's lock order), and
everything the common path needs: for an order the tier row, the soonest open lot's
expiry, the net spend in the tier window and the request's record; for a redemption the
soonest open lot and the spend's record. A member with an account, not merged, then needs
no other read: an order is its writes (order, items, entry, lot, account, record, events)
and a redemption one lot update, the entry and the account. Anyone else (no account yet,
a merged member, a lot past its expiry, a spend larger than the soonest lot) takes the
general path, which reads what it needs as it goes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response

from bench.floors import points, protocol, tiers
from bench.floors.kit import (
    Done,
    Floor,
    FloorConfig,
    Partner,
    Refused,
    json_body,
    keyed,
    make_flask,
    respond,
)
from bench.floors.open_api_input import parse_order, parse_redeem

MISMATCH = "This external_id was already used for a different request."
Key = tuple[str, str, str]  # kind, channel, external id
ORDER_INTAKE = (
    "SELECT m.id, m.birthday, m.merged_into_id, a.member_id, a.balance, a.debt, t.member_id, "
    "t.tier_code, (SELECT MIN(l.expires_at) FROM points_lots l WHERE l.member_id = m.id "
    "AND l.remaining > 0), (SELECT COALESCE(SUM(o.amount_cents - o.refunded_cents), 0) "
    "FROM orders o WHERE o.member_id = m.id AND o.paid_at >= %s AND o.paid_at < %s), "
    "x.fingerprint, x.answer FROM members m "
    "LEFT JOIN points_accounts a ON a.member_id = m.id "
    "LEFT JOIN member_tiers t ON t.member_id = m.id "
    "LEFT JOIN external_requests x ON x.partner_id = %s AND x.kind = %s AND x.channel = %s "
    "AND x.external_id = %s WHERE m.card_no = %s FOR UPDATE"
)
TILL_INTAKE = (  # the spend's record: its own ledger entry
    "SELECT m.id, m.merged_into_id, a.member_id, a.balance, a.debt, l.id, l.remaining, "
    "l.expires_at, e.id, e.request_fingerprint, e.member_id, e.balance_after FROM members m "
    "LEFT JOIN points_accounts a ON a.member_id = m.id "
    "LEFT JOIN points_lots l ON l.id = (SELECT s.id FROM points_lots s WHERE s.member_id = m.id "
    "AND s.remaining > 0 ORDER BY s.expires_at, s.id LIMIT 1) "
    "LEFT JOIN points_entries e ON e.idempotency_key = %s WHERE m.card_no = %s FOR UPDATE"
)
TILL_INTAKE_TABLE = (  # before the app kept till records on their entries: external_requests
    "SELECT m.id, m.merged_into_id, a.member_id, a.balance, a.debt, l.id, l.remaining, "
    "l.expires_at, x.id, x.fingerprint, x.answer, NULL FROM members m "
    "LEFT JOIN points_accounts a ON a.member_id = m.id "
    "LEFT JOIN points_lots l ON l.id = (SELECT s.id FROM points_lots s WHERE s.member_id = m.id "
    "AND s.remaining > 0 ORDER BY s.expires_at, s.id LIMIT 1) "
    "LEFT JOIN external_requests x ON x.partner_id = %s AND x.kind = %s AND x.channel = %s "
    "AND x.external_id = %s WHERE m.card_no = %s FOR UPDATE"
)


def replay(stored: tuple[str | None, Any] | None, digest: str) -> Any:
    """None for a first send; the first answer for the same request; refused otherwise,
    without a word about the first (app.external_ids)."""
    if stored is None:
        return None
    if stored[0] != digest:
        raise Refused(409, "idempotency_mismatch", MISMATCH)
    return stored[1]


def find_record(cursor: Any, partner: Partner, key: Key) -> tuple[str | None, Any] | None:
    cursor.execute(
        "SELECT fingerprint, answer FROM external_requests WHERE partner_id = %s "
        "AND kind = %s AND channel = %s AND external_id = %s",
        (partner.id, *key),
    )
    row = cursor.fetchone()
    return None if row is None else (row[0], json.loads(row[1]))


def find_entry_record(cursor: Any, ledger_key: str) -> tuple[str | None, Any] | None:
    cursor.execute(
        "SELECT request_fingerprint, member_id, balance_after FROM points_entries "
        "WHERE idempotency_key = %s",
        (ledger_key,),
    )
    row = cursor.fetchone()
    return None if row is None else (row[0], {"member_id": row[1], "balance": row[2]})


def record_answer(cursor: Any, partner: Partner, key: Key, digest: str, answer: Any) -> None:
    cursor.execute(
        "INSERT INTO external_requests (partner_id, kind, channel, external_id, "
        "fingerprint, answer, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (partner.id, *key, digest, json.dumps(answer), points.utc_now()),
    )


def survivor(cursor: Any, member_id: int, merged_into: int | None) -> tuple[int, Any]:
    """(id, birthday) of the member that survives today, merges followed."""
    birthday = None
    for _ in range(16):
        if merged_into is None:
            return member_id, birthday
        cursor.execute(
            "SELECT id, birthday, merged_into_id FROM members WHERE id = %s", (merged_into,)
        )
        member_id, birthday, merged_into = cursor.fetchone()
    raise Refused(404, "not_found", "No member matches.", field="member.card_no")


def item_row(order_id: int, item: dict[str, Any]) -> tuple[Any, ...]:
    columns = ("sku", "name", "category", "brand", "quantity", "amount_cents")
    return (order_id, *(item.get(column) for column in columns))


class OpenApiFloor:
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.tz = ZoneInfo(floor.config.timezone)

    def settings(self) -> tiers.Settings:
        loaded: tiers.Settings = self.floor.once(
            "settings", lambda cursor: tiers.load_settings(cursor, self.tz)
        )
        return loaded

    def till_records_on_entries(self) -> bool:
        """Whether the schema keeps a till spend's record on its entry (migration 0007)."""

        def probe(cursor: Any) -> bool:
            cursor.execute("SHOW COLUMNS FROM points_entries LIKE 'request_fingerprint'")
            return cursor.fetchone() is not None

        return bool(self.floor.once("till_records_on_entries", probe))

    # --- POST /open/v1/orders ---

    def order(self, partner: Partner, order: dict[str, Any]) -> Done:
        if not partner.may_use_channel(order["channel"]):
            raise Refused(403, "forbidden", "This partner may not use this channel.")
        key = ("order", order["channel"], order["external_id"])
        digest = protocol.fingerprint(order)

        def work(cursor: Any) -> Done:
            settings = self.settings()
            window = tiers.naive_utc(*settings.window(datetime.now(UTC)))
            card = order["member"]["card_no"]
            cursor.execute(ORDER_INTAKE, (*window, partner.id, *key, card))
            row = cursor.fetchone()
            stored = (row[10], json.loads(row[11])) if row and row[10] is not None else None
            earlier = replay(stored if row else find_record(cursor, partner, key), digest)
            if earlier is not None:
                return Done(earlier, 200, write=False)
            if row is None:
                raise Refused(404, "not_found", "No member matches.", field="member.card_no")
            answer = self.record_order(cursor, partner, order, row)
            record_answer(cursor, partner, key, digest, answer)
            return Done(answer, 201, write=True)

        return keyed(self.floor, partner, work)

    def record_order(
        self, cursor: Any, partner: Partner, order: dict[str, Any], intake: tuple[Any, ...]
    ) -> dict[str, Any]:
        settings, rules = self.settings(), self.settings().rules
        member_id, birthday, merged_into, account_of, balance, debt = intake[:6]
        tier_row, tier_code = intake[6:8]
        held = merged_into is None and account_of is not None  # the common path
        if merged_into is not None:  # the survivor's tier, not the one read with the intake
            member_id, birthday = survivor(cursor, member_id, merged_into)
            cursor.execute(
                "SELECT member_id, tier_code FROM member_tiers WHERE member_id = %s", (member_id,)
            )
            found = cursor.fetchone()
            tier_row, tier_code = (found[0], found[1]) if found else (None, None)
        current = settings.standing(tier_code, tier_row is not None)
        paid_at, amount = order["paid_at"], order["amount_cents"]
        pct = int(current["benefits"].get("points_multiplier_pct", 100)) if current else 100
        birthday_pct = 100
        if birthday is not None and birthday.month == paid_at.astimezone(self.tz).month:
            birthday_pct = int(rules["birthday_month_multiplier_pct"])
        earned = amount * int(rules["points_per_yuan"]) * pct * birthday_pct // 1_000_000
        account = None
        if earned > 0 and held:
            account = points.Account(member_id, int(balance), int(debt))
            if intake[8] is not None and intake[8] <= points.utc_now():
                points.write_off_expired(cursor, account, points.utc_now())
        elif earned > 0:
            account = points.lock_account(cursor, member_id, create=True)
            if account is None:
                raise AssertionError("an account just created is there")
            points.refuse_merged(cursor, member_id)
            points.write_off_expired(cursor, account, points.utc_now())
        target, value = tiers.lift(
            cursor,
            settings,
            member_id,
            current=current,
            amount=amount,
            paid_at=paid_at,
            spent=int(intake[9]) if held else None,
        )
        tier_after = tiers.view(target or current)
        cursor.execute(
            "INSERT INTO orders (partner_id, channel, external_id, member_id, store_code, "
            "paid_at, amount_cents, refunded_cents, points_earned, points_reversed, tier_after, "
            "coupon_codes, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, 0, %s, %s, %s)",
            (
                partner.id,
                order["channel"],
                order["external_id"],
                member_id,
                order["store_code"],
                paid_at.astimezone(UTC).replace(tzinfo=None),
                amount,
                earned,
                json.dumps(tier_after) if tier_after is not None else None,
                json.dumps(order["coupon_codes"]) if order["coupon_codes"] is not None else None,
                points.utc_now(),
            ),
        )
        order_id = int(cursor.lastrowid)
        cursor.executemany(  # one multi-row INSERT
            "INSERT INTO order_items (order_id, sku, name, category, brand, quantity, "
            "amount_cents) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [item_row(order_id, item) for item in order["items"]],
        )
        if account is not None:
            points.earn(
                cursor,
                account,
                earned,
                expires_at=points.expiry_for(points.utc_now(), rules["expiry"], self.tz),
                reason_code="order",
                note=f"order {order['channel']}/{order['external_id']}",
                order_id=order_id,
                idempotency_key=f"order:{order_id}",
            )
            points.save_account(cursor, account)
        events: list[tiers.Event] = []
        if target is not None:
            lifted = tiers.change_tier(
                cursor,
                settings,
                member_id,
                before=current,
                target=target,
                value=value,
                reason=f"order {order_id}",
            )
            events.append(lifted)
        recorded = {"order_id": order_id, "member_id": member_id, "channel": order["channel"]}
        recorded |= {"external_id": order["external_id"], "store_code": order["store_code"]}
        recorded |= {"amount_cents": amount, "points_earned": earned}
        events.append(("order.recorded", recorded | {"paid_at": paid_at.isoformat()}, member_id))
        stamp = points.utc_now()
        cursor.executemany(  # the events, in the order the app emits them, in one INSERT
            "INSERT INTO outbox (topic, payload, member_id, created_at, attempts, available_at) "
            "VALUES (%s, %s, %s, %s, 0, %s)",
            [(topic, json.dumps(data), member, stamp, stamp) for topic, data, member in events],
        )
        answer = {"order_id": order_id, "member_id": member_id, "points_earned": earned}
        return answer | {"tier": tier_after}

    # --- POST /open/v1/points/redeem ---

    def redeem(self, partner: Partner, spend: dict[str, Any]) -> Done:
        if not partner.trusted:  # only the card QR code proves the member is at the till
            raise Refused(403, "forbidden", "Spending points needs the member's card QR code.")
        if spend["channel"] and not partner.may_use_channel(spend["channel"]):
            raise Refused(403, "forbidden", "This partner may not use this channel.")
        external_id, wanted = spend["external_id"], spend["points"]
        key, digest = ("till_spend", "", external_id), protocol.fingerprint(spend)
        ledger_key = f"till:{partner.id}:{external_id}"
        on_entries = self.till_records_on_entries()
        where = f" at {spend['store_code']}" if spend["store_code"] else ""

        def work(cursor: Any) -> Done:
            card = spend["member"]["card_no"]
            if on_entries:
                cursor.execute(TILL_INTAKE, (ledger_key, card))
            else:
                cursor.execute(TILL_INTAKE_TABLE, (partner.id, *key, card))
            row = cursor.fetchone()
            if row is None:
                stored = (
                    find_entry_record(cursor, ledger_key)
                    if on_entries
                    else find_record(cursor, partner, key)
                )
            elif row[8] is None:
                stored = None
            elif on_entries:
                stored = (row[9], {"member_id": row[10], "balance": row[11]})
            else:
                stored = (row[9], json.loads(row[10]))
            earlier = replay(stored, digest)
            if earlier is not None:
                return Done(earlier, 200, write=False)
            if row is None:
                raise Refused(404, "not_found", "No member matches.", field="member.card_no")
            member_id, merged_into, account_of, balance, debt = row[:5]
            if merged_into is None and account_of is not None:  # the common path
                account = points.Account(member_id, int(balance), int(debt))
                soonest = (row[5], row[6], row[7]) if row[5] is not None else None
                points.spend(cursor, account, wanted, soonest=soonest, soonest_read=True)
            else:
                member_id = survivor(cursor, member_id, merged_into)[0]
                found = points.lock_account(cursor, member_id, create=False)
                if found is None:
                    raise Refused(
                        409,
                        "insufficient_points",
                        "Not enough points.",
                        balance=0,
                        requested=wanted,
                    )
                account = found
                points.refuse_merged(cursor, member_id)
                points.spend(cursor, account, wanted)
            points.insert_entry(
                cursor,
                account,
                -wanted,
                kind="spend",
                reason_code="redemption",
                note=f"till redemption {external_id}{where}",
                idempotency_key=ledger_key,
                request_fingerprint=digest if on_entries else None,
            )
            points.save_account(cursor, account)
            answer = {"member_id": member_id, "balance": account.balance}
            if not on_entries:
                record_answer(cursor, partner, key, digest, answer)
            return Done(answer, 201, write=True)

        return keyed(self.floor, partner, work)


def create_app(config: FloorConfig | None = None) -> Flask:
    floor = Floor(config or FloorConfig.from_env())
    api = OpenApiFloor(floor)
    app = make_flask("floor-open-api", floor)

    @app.post("/open/v1/orders")
    def post_order() -> Response:
        partner = floor.verify_signed()
        return respond(api.order(partner, parse_order(json_body())))

    @app.post("/open/v1/points/redeem")
    def redeem_points() -> Response:
        partner = floor.verify_signed()
        return respond(api.redeem(partner, parse_redeem(json_body())))

    return app
