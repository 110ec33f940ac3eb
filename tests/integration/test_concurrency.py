"""Races on MariaDB, through HTTP: an app that commits for real, one test client per
thread, all started together. Whatever the interleaving, money-like state stays exact."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from app.admins.operations import CLI
from app.checkins.models import Checkin
from app.members.models import Member
from app.orders.models import Order, Refund
from app.partners.services import create_partner
from app.points.models import PointsAccount, PointsEntry, PointsLot
from tests.support.http import bearer, log_in
from tests.support.signing import PartnerKeys, open_post

pytestmark = pytest.mark.mariadb

ORDERS = "/open/v1/orders"
REFUNDS = "/open/v1/refunds"
REDEEM = "/open/v1/points/redeem"
# 10:00 on 4 May 2026 in Shanghai: far from a business-day boundary.
T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)
Answer = tuple[int, Any]


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def live(frozen, committing_app) -> Flask:
    return committing_app


@pytest.fixture
def keys(live) -> PartnerKeys:
    """A store system's credentials, committed."""
    deps = live.extensions["huiyuan"]
    made = create_partner(
        uow=deps.uow(), actor=CLI, name="POS", secret_key=deps.config.secret_key, trusted=True
    )
    return PartnerKeys(made.app_key, made.app_secret)


def race(app: Flask, count: int, call: Callable[[FlaskClient, int], Any]) -> list[Answer]:
    """``call(client, index)`` in ``count`` threads released at once; (status, json) each."""
    start = threading.Barrier(count)

    def run(index: int) -> Answer:
        client = app.test_client()
        start.wait(timeout=10)
        response = call(client, index)
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def order_body(who: dict[str, Any], external_id: str, amount_cents: int) -> dict[str, Any]:
    return {
        "channel": "pos",
        "external_id": external_id,
        "member": who,
        "paid_at": "2026-05-04T09:30:00+08:00",
        "amount_cents": amount_cents,
        "items": [{"sku": "S1", "name": "Tea", "quantity": 1, "amount_cents": amount_cents}],
    }


def place_order(app: Flask, keys: PartnerKeys, who: dict[str, Any], external_id: str, cents: int):
    answer = open_post(app.test_client(), keys, ORDERS, order_body(who, external_id, cents))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def error_codes(answers: list[Answer]) -> Counter[str]:
    return Counter(body["error"]["code"] for status, body in answers if status >= 400)


def assert_ledger_agrees(engine: Engine, member_id: int) -> dict[str, Any]:
    """balance = sum of the entries = what the open lots hold, and each entry's
    balance_after is the running sum: the invariants of the ledger."""
    with engine.connect() as connection:
        account = connection.execute(
            select(PointsAccount.balance, PointsAccount.debt).where(
                PointsAccount.member_id == member_id
            )
        ).one()
        entries = connection.execute(
            select(PointsEntry.delta, PointsEntry.kind, PointsEntry.balance_after)
            .where(PointsEntry.member_id == member_id)
            .order_by(PointsEntry.id)
        ).all()
        lots = connection.scalar(
            select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
                PointsLot.member_id == member_id
            )
        )
    running = 0
    for delta, _, balance_after in entries:
        running += delta
        assert balance_after == running, entries
    assert account.balance == running == int(lots)
    return {
        "balance": account.balance,
        "debt": account.debt,
        "kinds": Counter(kind for _, kind, _ in entries),
    }


def test_fifty_till_redemptions_of_100_against_1000_points(live, keys, sim, engine):
    setup = live.test_client()
    member = log_in(setup, sim, "o-race-till")
    card = {"card_no": member["member"]["card_no"]}
    assert place_order(live, keys, card, "race-till-stock", 100_000)["points_earned"] == 1_000

    answers = race(
        live,
        50,
        lambda client, i: open_post(
            client, keys, REDEEM, {"member": card, "points": 100, "external_id": f"till-{i}"}
        ),
    )

    assert Counter(status for status, _ in answers) == {201: 10, 409: 40}, answers
    assert error_codes(answers) == {"insufficient_points": 40}
    # Each success saw the balance its own spend left: 900, 800, ... 0, once each.
    left = sorted(body["balance"] for status, body in answers if status == 201)
    assert left == list(range(0, 1_000, 100))
    ledger = assert_ledger_agrees(engine, member["member"]["id"])
    assert ledger["balance"] == 0
    assert ledger["kinds"] == {"earn": 1, "spend": 10}


def test_twenty_posts_of_the_same_order_record_one_order_and_one_earn(live, keys, sim, engine):
    setup = live.test_client()
    member = log_in(setup, sim, "o-race-order")
    body = order_body({"card_no": member["member"]["card_no"]}, "race-same-order", 12_345)

    answers = race(live, 20, lambda client, _: open_post(client, keys, ORDERS, body))

    assert Counter(status for status, _ in answers) == {201: 1, 200: 19}, answers
    bodies = [answer for _, answer in answers]
    assert all(answer == bodies[0] for answer in bodies)
    assert bodies[0]["member_id"] == member["member"]["id"]
    assert bodies[0]["points_earned"] == 123
    with engine.connect() as connection:
        orders = connection.execute(
            select(Order.id).where(Order.channel == "pos", Order.external_id == "race-same-order")
        ).all()
        earns = connection.execute(
            select(PointsEntry.order_id).where(
                PointsEntry.member_id == member["member"]["id"], PointsEntry.kind == "earn"
            )
        ).all()
    assert [row.id for row in orders] == [bodies[0]["order_id"]]
    assert [row.order_id for row in earns] == [bodies[0]["order_id"]]
    ledger = assert_ledger_agrees(engine, member["member"]["id"])
    assert ledger["balance"] == 123


def test_ten_check_ins_at_once_make_one(live, sim, engine):
    setup = live.test_client()
    member = log_in(setup, sim, "o-race-checkin")
    headers = bearer(member["token"])

    answers = race(live, 10, lambda client, _: client.post("/mp/v1/checkins", headers=headers))

    assert Counter(status for status, _ in answers) == {200: 1, 409: 9}, answers
    assert error_codes(answers) == {"limit_reached": 9}
    assert [body for status, body in answers if status == 200] == [{"points": 5, "streak": 1}]
    with engine.connect() as connection:
        checkins = connection.scalar(
            select(func.count())
            .select_from(Checkin)
            .where(Checkin.member_id == member["member"]["id"])
        )
    assert checkins == 1
    ledger = assert_ledger_agrees(engine, member["member"]["id"])
    assert ledger["kinds"] == {"earn": 1}
    assert ledger["balance"] == 5


def test_ten_partial_refunds_at_once_reverse_exactly_what_the_order_earned(live, keys, sim, engine):
    setup = live.test_client()
    member = log_in(setup, sim, "o-race-refund")
    placed = place_order(live, keys, {"card_no": member["member"]["card_no"]}, "race-rf", 99_990)
    assert placed["points_earned"] == 999

    answers = race(
        live,
        10,
        lambda client, i: open_post(
            client,
            keys,
            REFUNDS,
            {
                "channel": "pos",
                "external_order_id": "race-rf",
                "external_id": f"race-rf-{i}",
                "amount_cents": 9_999,
            },
        ),
    )

    assert [status for status, _ in answers] == [201] * 10, answers
    assert sum(body["points_reversed"] for _, body in answers) == 999
    with engine.connect() as connection:
        order = connection.execute(
            select(Order.refunded_cents, Order.points_reversed).where(
                Order.id == placed["order_id"]
            )
        ).one()
        refunds = connection.scalar(
            select(func.count()).select_from(Refund).where(Refund.order_id == placed["order_id"])
        )
    assert (order.refunded_cents, order.points_reversed) == (99_990, 999)
    assert refunds == 10
    ledger = assert_ledger_agrees(engine, member["member"]["id"])
    assert ledger == {"balance": 0, "debt": 0, "kinds": {"earn": 1, "reverse": 10}}


def test_twenty_orders_for_one_new_phone_create_one_member(live, keys, engine):
    phone = "13977770000"

    answers = race(
        live,
        20,
        lambda client, i: open_post(
            client, keys, ORDERS, order_body({"phone": phone}, f"race-phone-{i}", 1_000 + i)
        ),
    )

    assert [status for status, _ in answers] == [201] * 20, answers
    member_ids = {body["member_id"] for _, body in answers}
    assert len(member_ids) == 1
    (member_id,) = member_ids
    with engine.connect() as connection:
        with_phone = connection.execute(select(Member.id).where(Member.phone == phone)).all()
        orders = connection.scalar(
            select(func.count()).select_from(Order).where(Order.member_id == member_id)
        )
    assert [row.id for row in with_phone] == [member_id]
    assert orders == 20
    ledger = assert_ledger_agrees(engine, member_id)
    assert ledger["kinds"] == {"earn": 20}
    assert ledger["balance"] == sum(body["points_earned"] for _, body in answers) == 200
