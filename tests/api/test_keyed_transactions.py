"""A request with an Idempotency-Key is one transaction (docs/ARCHITECTURE.md, Idempotency
and replays): the key looked up and claimed, the effect, the answer kept, one COMMIT; a
replay is one read. Counted on the test's connection, where each session's transaction
is a SAVEPOINT. On MariaDB: BEGIN (implicit), 7 statements and a SAVEPOINT, COMMIT."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Connection, event, select
from sqlalchemy.orm import Session

from app.idempotency.models import IdempotencyRecord
from tests.support.open_api import ORDERS, REDEEM, balance, order_body, redeem_body
from tests.support.signing import PartnerKeys, open_post, signed_headers


class Sent:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(" ".join(statement.split()))

    @property
    def transactions(self) -> int:
        return sum(s.startswith("SAVEPOINT") for s in self.statements)

    @property
    def work(self) -> list[str]:
        return [s for s in self.statements if "SAVEPOINT" not in s]


@pytest.fixture
def sent(connection: Connection) -> Iterator[Sent]:
    counter = Sent()
    yield counter
    event.remove(connection, "before_cursor_execute", counter.before)


def keyed_redeem(
    client: FlaskClient, partner: PartnerKeys, card_no: str, points: int, key: str
) -> Any:
    raw = json.dumps(redeem_body({"card_no": card_no}, points, f"t-{key}")).encode()
    headers = signed_headers(partner, "POST", REDEEM, raw) | {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    return client.post(REDEEM, data=raw, headers=headers)


@pytest.fixture
def funded(client: FlaskClient, partner: PartnerKeys, card_no: str) -> None:
    answer = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "pos-k", 100_000))
    assert answer.get_json()["points_earned"] == 1_000


def test_a_new_key_is_one_transaction_with_its_effect(
    client: FlaskClient,
    partner: PartnerKeys,
    card_no: str,
    member_id: int,
    funded: None,
    sent: Sent,
    connection: Connection,
    session: Session,
) -> None:
    keyed_redeem(client, partner, card_no, 1, "warm")  # the partner and settings cached
    event.listen(connection, "before_cursor_execute", sent.before)

    answer = keyed_redeem(client, partner, card_no, 300, "k-1")

    assert answer.status_code == 201, answer.get_json()
    # One session's transaction (the test's SAVEPOINT stands in for its BEGIN) and, right
    # after the claim, the savepoint that keeps the claim through the effect's rollbacks.
    assert sent.transactions == 2, sent.statements
    assert sent.statements[0].startswith("SAVEPOINT")
    assert sent.statements[2].startswith("INSERT INTO idempotency_records")
    assert sent.statements[3].startswith("SAVEPOINT")
    # the key looked up and claimed; the spend's four (the intake with the soonest lot, the
    # lot, the account, the entry); the answer written on the claim
    assert len(sent.work) == 7, "\n".join(s[:90] for s in sent.work)
    assert sent.work[0].startswith("SELECT") and "idempotency_records" in sent.work[0]
    assert sent.work[1].startswith("INSERT INTO idempotency_records")
    assert sent.work[-1].startswith("UPDATE idempotency_records")
    record = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "k-1")).one()
    assert (record.status_code, json.loads(record.response_body or "")) == (
        201,
        {"member_id": member_id, "balance": 699},
    )


def test_a_replay_is_one_read(
    client: FlaskClient,
    partner: PartnerKeys,
    card_no: str,
    funded: None,
    sent: Sent,
    connection: Connection,
    session: Session,
) -> None:
    first = keyed_redeem(client, partner, card_no, 300, "k-1")
    event.listen(connection, "before_cursor_execute", sent.before)

    again = keyed_redeem(client, partner, card_no, 300, "k-1")

    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_data() == first.get_data()
    assert len(sent.work) == 1 and "idempotency_records" in sent.work[0], sent.work


def test_a_refused_effect_keeps_its_answer_and_changes_nothing(
    client: FlaskClient,
    partner: PartnerKeys,
    card_no: str,
    member_id: int,
    funded: None,
    session: Session,
) -> None:
    short = keyed_redeem(client, partner, card_no, 5_000, "k-short")
    again = keyed_redeem(client, partner, card_no, 5_000, "k-short")

    assert short.status_code == 409
    assert short.get_json()["error"]["code"] == "insufficient_points"
    assert (again.status_code, again.get_data()) == (409, short.get_data())
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert balance(session, member_id) == 1_000
