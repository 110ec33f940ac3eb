"""Migration 0004 gives existing ledger entries a reason code and a member-facing text,
and keeps what the old reason said, without an operator's name, as the operators' note."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from app.db import make_engine
from app.migrate import upgrade_database

ROWS = [
    # kind, old reason, order_id, idempotency_key, expected code, expected note
    ("earn", "order pos/A1", 7, "order:7", "order", "order pos/A1"),
    ("earn", "sign-up bonus", None, "signup:1", "signup", "sign-up bonus"),
    ("earn", "check-in 2026-05-04 (day 1)", None, "checkin:1:2026-05-04", "checkin", None),
    ("spend", "till redemption T1 at S1", None, "till:k:T1", "redemption", None),
    ("reverse", "refund pos/R1 of order A1", 7, None, "refund", None),
    ("reverse", "settles points owed by an earlier refund", None, None, "debt_settlement", None),
    ("expire", "points expired", None, None, "expiry", None),
    ("adjust", "goodwill (by ops-li)", None, None, "adjustment", "goodwill"),
    ("adjust", "merged from member 2", None, None, "merge", None),
]
TEXTS = {"order": "订单积分", "adjustment": "积分调整", "merge": "账户合并", "expiry": "积分过期"}


def test_existing_entries_get_codes_texts_and_notes_without_operators(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade_database(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO members (id, card_no, gender, registration_channel, status,"
                " registered_at, updated_at) VALUES (1, '100000000001', 'unknown', 'pos',"
                " 'active', '2026-05-04 00:00:00', '2026-05-04 00:00:00')"
            )
        )
        for index, (kind, reason, order_id, key, *_) in enumerate(ROWS, start=1):
            connection.execute(
                text(
                    "INSERT INTO points_entries (id, member_id, delta, kind, reason,"
                    " balance_after, idempotency_key, order_id, created_at)"
                    " VALUES (:id, 1, 1, :kind, :reason, 1, :key, :order_id,"
                    " '2026-05-04 00:00:00')"
                ),
                {"id": index, "kind": kind, "reason": reason, "key": key, "order_id": order_id},
            )

    upgrade_database(engine, "0004")

    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT reason_code, reason, note FROM points_entries ORDER BY id")
        ).all()
    engine.dispose()
    assert [row.reason_code for row in stored] == [row[4] for row in ROWS]
    for row, (_, old, *_, expected_note) in zip(stored, ROWS, strict=True):
        assert row.note == (expected_note or old)
        assert "ops-li" not in row.reason and "ops-li" not in (row.note or "")
        if row.reason_code in TEXTS:
            assert row.reason == TEXTS[row.reason_code]
    assert stored[2].reason == "每日签到"
