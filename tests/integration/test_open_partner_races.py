"""Races on the open API's external ids, on MariaDB through HTTP: identical replays get
one effect and identical answers, differing ones exactly one winner, and two partners
under the same external id each their own order."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from app.admins.operations import CLI
from app.external_ids.models import ExternalRequest
from app.orders.models import Order, Refund
from app.partners.models import Partner
from app.partners.services import create_partner
from app.points.models import PointsAccount, PointsEntry
from tests.integration.test_concurrency import ORDERS, REDEEM, REFUNDS, T0, order_body
from tests.support.http import bearer, log_in
from tests.support.signing import PartnerKeys, open_post

pytestmark = pytest.mark.mariadb

Sent = tuple[int, bytes]


@pytest.fixture
def live(time_machine, committing_app) -> Flask:
    time_machine.move_to(T0, tick=False)
    return committing_app


@pytest.fixture
def new_partner(live) -> Callable[..., PartnerKeys]:
    deps = live.extensions["huiyuan"]

    def make(name: str, **rights: Any) -> PartnerKeys:
        made = create_partner(
            uow=deps.uow(), actor=CLI, name=name, secret_key=deps.config.secret_key, **rights
        )
        return PartnerKeys(made.app_key, made.app_secret)

    return make


def race(app: Flask, count: int, call: Callable[[FlaskClient, int], Any]) -> list[Sent]:
    """``call(client, index)`` in ``count`` threads released at once: (status, raw body)."""
    start = threading.Barrier(count)

    def run(index: int) -> Sent:
        client = app.test_client()
        start.wait(timeout=10)
        response = call(client, index)
        return response.status_code, response.get_data()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def count_where(engine: Engine, model: Any, *where: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def keys_partner_id(engine: Engine, keys: PartnerKeys) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(Partner.id).where(Partner.app_key == keys.app_key)))


def balance(engine: Engine, member_id: int) -> int:
    with engine.connect() as connection:
        found = connection.scalar(
            select(PointsAccount.balance).where(PointsAccount.member_id == member_id)
        )
    return int(found or 0)


def test_twenty_identical_replays_get_one_order_and_the_same_bytes(live, new_partner, sim, engine):
    keys = new_partner("POS")
    member = log_in(live.test_client(), sim, "o-replay-same")
    body = order_body({"card_no": member["member"]["card_no"]}, "same-body", 12_345)

    answers = race(live, 20, lambda client, _: open_post(client, keys, ORDERS, body))

    assert Counter(status for status, _ in answers) == {201: 1, 200: 19}, answers
    assert len({raw for _, raw in answers}) == 1  # every answer is the first, byte for byte
    assert count_where(engine, Order, Order.external_id == "same-body") == 1
    assert balance(engine, member["member"]["id"]) == 123


def test_twenty_different_bodies_under_one_external_id_have_one_winner(
    live, new_partner, sim, engine
):
    keys = new_partner("POS")
    member = log_in(live.test_client(), sim, "o-replay-diff")
    card = {"card_no": member["member"]["card_no"]}

    answers = race(
        live,
        20,
        lambda client, i: open_post(
            client, keys, ORDERS, order_body(card, "contested", 10_000 + 100 * i)
        ),
    )

    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 1, 409: 19}, answers
    refused = [json.loads(raw)["error"] for status, raw in answers if status == 409]
    assert {error["code"] for error in refused} == {"idempotency_mismatch"}
    assert all(error["details"] == {} for error in refused)
    (won,) = [json.loads(raw) for status, raw in answers if status == 201]
    assert count_where(engine, Order, Order.external_id == "contested") == 1
    assert balance(engine, member["member"]["id"]) == won["points_earned"]


def test_two_partners_racing_on_one_external_id_get_an_order_each(live, new_partner, sim, engine):
    partners = [new_partner("POS"), new_partner("ERP")]
    member = log_in(live.test_client(), sim, "o-two-partners")
    body = order_body({"card_no": member["member"]["card_no"]}, "shared-id", 10_000)

    answers = race(live, 20, lambda client, i: open_post(client, partners[i % 2], ORDERS, body))

    assert Counter(status for status, _ in answers) == {201: 2, 200: 18}, answers
    order_ids = {json.loads(raw)["order_id"] for _, raw in answers}
    assert len(order_ids) == 2
    assert count_where(engine, Order, Order.external_id == "shared-id") == 2
    assert balance(engine, member["member"]["id"]) == 200


def test_refunds_and_till_spends_replayed_at_once_take_effect_once(live, new_partner, sim, engine):
    keys = new_partner("POS")
    client = live.test_client()
    member = log_in(client, sim, "o-replay-refund")
    card = {"card_no": member["member"]["card_no"]}
    assert (
        open_post(client, keys, ORDERS, order_body(card, "to-refund", 100_000)).status_code == 201
    )
    refund = {"channel": "pos", "external_order_id": "to-refund", "external_id": "rf-1",
              "amount_cents": 10_000}  # fmt: skip
    qr = client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()["qr_payload"]
    spend = {"member": {"qr_payload": qr}, "points": 50, "external_id": "till-1"}

    refunds = race(live, 10, lambda c, _: open_post(c, keys, REFUNDS, refund))
    spends = race(live, 10, lambda c, _: open_post(c, keys, REDEEM, spend))

    for answers in (refunds, spends):
        assert Counter(status for status, _ in answers) == {201: 1, 200: 9}, answers
        assert len({raw for _, raw in answers}) == 1
    assert count_where(engine, Refund, Refund.external_id == "rf-1") == 1
    assert count_where(engine, ExternalRequest, ExternalRequest.external_id == "rf-1") == 1
    # a till spend is recorded by its ledger entry: one entry, with the request's fingerprint
    till_key = PointsEntry.idempotency_key == f"till:{keys_partner_id(engine, keys)}:till-1"
    fingerprinted = PointsEntry.request_fingerprint.is_not(None)
    assert count_where(engine, PointsEntry, till_key, fingerprinted) == 1
    assert balance(engine, member["member"]["id"]) == 1_000 - 100 - 50
