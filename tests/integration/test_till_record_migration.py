"""Migration 0007 makes a till spend's ledger entry its record: the fingerprint kept in
external_requests moves onto the entry, and a replay of that spend still answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text

from app.db import make_engine
from app.migrate import upgrade_database
from tests.support import settings

SCRATCH = "huiyuan_migration_0007"

AT = {"at": "2026-05-04 00:00:00"}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at revision 0006: a file on SQLite, a scratch database on MariaDB."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    server = make_engine(str(make_url(settings.DATABASE_URL).set(database="mysql")))
    with server.begin() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH}"))
        connection.execute(text(f"CREATE DATABASE {SCRATCH} CHARACTER SET utf8mb4"))
    engine = make_engine(str(make_url(settings.DATABASE_URL).set(database=SCRATCH)))
    try:
        yield engine
    finally:
        engine.dispose()
        with server.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH}"))
        server.dispose()


def test_till_fingerprints_move_onto_their_entries(old_database: Engine) -> None:
    engine = old_database
    upgrade_database(engine, "0006")
    with engine.begin() as connection:
        run = connection.execute
        run(text(
            "INSERT INTO members (id, card_no, gender, registration_channel, status,"
            " registered_at, updated_at) VALUES (1, '100000000001', 'unknown', 'pos', 'active',"
            " :at, :at)"
        ), AT)  # fmt: skip
        run(text(
            "INSERT INTO partners (id, name, app_key, secret_encrypted, active, trusted,"
            " created_at) VALUES (7, 'POS', 'hk_7', 'x', 1, 1, :at)"
        ), AT)  # fmt: skip
        for entry_id, key in ((1, "till:7:T-1"), (2, "order:1"), (3, "till:7:T-2")):
            run(text(
                "INSERT INTO points_entries (id, member_id, delta, kind, reason_code, reason,"
                " balance_after, idempotency_key, created_at) VALUES"
                " (:id, 1, -1, 'spend', 'redemption', '积分兑换', 9, :key, :at)"
            ), {"id": entry_id, "key": key} | AT)  # fmt: skip
        for external_id, fingerprint in (("T-1", "f" * 64), ("T-2", "e" * 64)):
            run(text(
                "INSERT INTO external_requests (partner_id, kind, channel, external_id,"
                " fingerprint, answer, created_at) VALUES (7, 'till_spend', '', :external_id,"
                " :fingerprint, '{}', :at)"
            ), {"external_id": external_id, "fingerprint": fingerprint} | AT)  # fmt: skip
        run(text(
            "INSERT INTO external_requests (partner_id, kind, channel, external_id,"
            " fingerprint, answer, created_at) VALUES (7, 'order', 'pos', 'O-1', :f, '{}',"
            " :at)"
        ), {"f": "a" * 64} | AT)  # fmt: skip

    upgrade_database(engine, "0007")

    with engine.connect() as connection:
        fingerprints = connection.execute(
            text("SELECT id, request_fingerprint FROM points_entries ORDER BY id")
        ).all()
        kinds = connection.execute(text("SELECT kind FROM external_requests")).scalars().all()
    assert [tuple(row) for row in fingerprints] == [(1, "f" * 64), (2, None), (3, "e" * 64)]
    assert kinds == ["order"]  # the till's records now live on their entries
