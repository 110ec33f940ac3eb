"""Issue 6, the open API's partners, over HTTP: a replay with any field changed is refused
revealing nothing, each partner's keys reach only its own orders and spends, a channel not
given and a spend without the member present are 403, and the partner commands give and
change those rights on the running API.

The rules themselves (fingerprints, isolation, channels, presence) are tested against the
services in tests/services/test_order_replays.py, test_order_partners.py and
test_partners.py."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.external_ids.models import ExternalRequest
from app.orders.models import Order
from app.partners.models import Partner
from tests.support.cli import cli
from tests.support.http import PHONE, assert_envelope
from tests.support.open_api import (
    ORDERS,
    REDEEM,
    REFUNDS,
    balance,
    item,
    order_body,
    redeem_body,
    refund_body,
)
from tests.support.signing import open_get, open_post


def earn(client, keys, card_no: str, external_id: str = "seed", amount: int = 100_000) -> None:
    answer = open_post(client, keys, ORDERS, order_body({"card_no": card_no}, external_id, amount))
    assert answer.status_code == 201, answer.get_json()


def assert_reveals_nothing(error: dict[str, Any], *secrets: Any) -> None:
    assert error["details"] == {}
    text = json.dumps(error, ensure_ascii=False)
    for secret in secrets:
        assert str(secret) not in text


# --- 1. replays compare the whole request ---
# Over HTTP once, for any field of an order; each field of orders, refunds and spends, and
# the replay of an equal request, against the services (tests/services/test_order_replays.py).

ORDER_CHANGES = st.one_of(
    st.builds(lambda n: {"amount_cents": n}, st.integers(0, 10**9).filter(lambda n: n != 12_345)),
    st.builds(lambda s: {"store_code": s}, st.from_regex(r"[A-Z]{2}-[0-9]{1,4}", fullmatch=True)
              .filter(lambda s: s != "SH-001")),
    st.builds(lambda q: {"items": [item(12_345, quantity=q)]}, st.integers(2, 1_000_000)),
    st.builds(lambda sku: {"items": [item(12_345, sku=sku)]},
              st.text("ABCXYZ0123-", min_size=1, max_size=20).filter(lambda s: s != "SKU-LATTE")),
    st.builds(lambda p: {"member": {"phone": p}},
              st.from_regex(r"139[0-9]{8}", fullmatch=True)),
    st.builds(lambda m: {"paid_at": f"2026-05-04T09:{m:02d}:00+08:00"},
              st.integers(0, 59).filter(lambda m: m != 30)),
    st.builds(lambda codes: {"coupon_codes": codes},
              st.lists(st.text("ABC123", min_size=1, max_size=8), min_size=1, max_size=3)),
)  # fmt: skip


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(change=ORDER_CHANGES, number=st.integers(0, 10**6))
def test_a_replay_with_any_differing_field_is_409_and_changes_nothing(
    client, partner, card_no, member_id, session, count, change, number
):
    external_id = f"prop-{number}-{len(json.dumps(change))}-{count(Order)}"
    first = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, external_id))
    assert first.status_code == 201, first.get_json()
    before = (balance(session, member_id), count(Order), count(ExternalRequest))

    changed = order_body({"card_no": card_no}, external_id) | change
    error = assert_envelope(
        open_post(client, partner, ORDERS, changed), 409, "idempotency_mismatch"
    )

    assert_reveals_nothing(error, member_id, first.get_json()["order_id"])
    assert (balance(session, member_id), count(Order), count(ExternalRequest)) == before
    same = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, external_id))
    assert (same.status_code, same.get_data()) == (200, first.get_data())


# --- 2. partner isolation and channels ---


class TestIsolation:
    """Another partner's keys reach none of the partner's orders or spends."""

    def test_another_partner_using_the_same_order_id_records_its_own_order(
        self, client, partner, make_partner, card_no
    ):
        other = make_partner("ERP")
        mine = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "SAME-1"))
        theirs = open_post(
            client, other, ORDERS, order_body({"card_no": card_no}, "SAME-1", amount_cents=500)
        )

        assert (mine.status_code, theirs.status_code) == (201, 201)  # not a mismatch, not a replay
        assert theirs.get_json()["order_id"] != mine.get_json()["order_id"]
        assert theirs.get_json()["points_earned"] == 5

    def test_another_partners_order_is_404_to_a_refund(
        self, client, partner, make_partner, card_no, member_id, session
    ):
        other = make_partner("ERP")
        earn(client, partner, card_no, "O-1", 10_000)

        answer = open_post(client, other, REFUNDS, refund_body("O-1", "R-1", 10_000))

        error = assert_envelope(answer, 404, "not_found")
        assert error["details"] == {"field": "external_order_id"}  # nothing of the order
        assert balance(session, member_id) == 100

    def test_another_partner_using_the_same_spend_id_makes_its_own_spend(
        self, client, partner, make_partner, card_no
    ):
        other = make_partner("ERP", trusted=True)
        earn(client, partner, card_no)
        body = redeem_body({"card_no": card_no}, 100, "T-1")
        assert open_post(client, partner, REDEEM, body).status_code == 201

        theirs = open_post(client, other, REDEEM, body)

        assert theirs.status_code == 201  # its own spend, not a replay of the first
        assert theirs.get_json()["balance"] == 800


class TestChannels:
    def test_an_order_on_a_channel_not_given_is_403_naming_the_channel(
        self, client, make_partner, card_no, count
    ):
        pos_only = make_partner("POS", channels=["pos"])

        answer = open_post(
            client, pos_only, ORDERS, order_body({"card_no": card_no}, channel="tmall")
        )

        error = assert_envelope(answer, 403, "forbidden")
        assert error["details"] == {"reason": "channel_not_allowed", "channel": "tmall"}
        assert count(Order) == 0


# --- 3. spending points needs the member present ---


@pytest.fixture
def till(make_partner):
    """A store till: not trusted, every channel."""
    return make_partner("Store till")


class TestPresence:
    """A spend by the card QR code is the success path of tests/api/test_orders_http.py."""

    def test_an_untrusted_partner_spending_by_card_number_is_403(
        self, client, partner, till, card_no
    ):
        earn(client, partner, card_no)

        answer = open_post(client, till, REDEEM, redeem_body({"card_no": card_no}, 100, "T-1"))

        error = assert_envelope(answer, 403, "forbidden")
        assert error["details"] == {"reason": "member_not_present", "field": "member.card_no"}

    def test_an_untrusted_partner_still_looks_up_members_and_posts_orders(
        self, client, till, member_id
    ):
        found = open_get(client, till, f"/open/v1/members/lookup?phone={PHONE}")
        posted = open_post(client, till, ORDERS, order_body({"phone": PHONE}, "O-1"))

        assert found.status_code == 200, found.get_json()
        assert found.get_json()["member"]["id"] == member_id
        assert posted.status_code == 201, posted.get_json()
        assert posted.get_json()["member_id"] == member_id


# --- partners carry their rights ---


def test_partners_create_takes_channels_and_trusted(app, session):
    made = cli(app, "partners", "create", "Tmall shop", "--channels", "tmall,pos", "--trusted")
    assert made.exit_code == 0, made.output
    app_key = json.loads(made.output)["app_key"]

    stored = session.scalars(select(Partner).where(Partner.app_key == app_key)).one()
    assert (stored.channels, stored.trusted) == (["pos", "tmall"], True)

    plain = json.loads(cli(app, "partners", "create", "Store POS").output)
    stored = session.scalars(select(Partner).where(Partner.app_key == plain["app_key"])).one()
    assert (stored.channels, stored.trusted) == (None, False)  # every channel, not trusted


def test_partners_create_refuses_what_is_not_a_channel_code(app, count):
    made = cli(app, "partners", "create", "Bad", "--channels", "POS")

    assert made.exit_code != 0
    assert "validation_error" in made.output and "channels" in made.output
    assert count(Partner) == 0


def status_within(seconds: float, send: Any, expected: int) -> int:
    """Send until the answer is ``expected`` (workers see partner changes within a second)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = send()
        if answer.status_code == expected or time.monotonic() > deadline:
            return int(answer.status_code)
        time.sleep(0.05)


class TestPartnersConfigure:
    """An existing partner's channels and trust change without new credentials."""

    def test_trust_and_channels_change_on_the_running_api(
        self, app, client, partner, till, card_no
    ):
        earn(client, partner, card_no)
        by_card = redeem_body({"card_no": card_no}, 100, "T-1")
        assert_envelope(open_post(client, till, REDEEM, by_card), 403, "forbidden")

        made = cli(app, "partners", "configure", till.app_key, "--trusted", "--channels", "pos")

        assert made.exit_code == 0, made.output
        shown = json.loads(made.output)
        assert (shown["channels"], shown["trusted"]) == (["pos"], True)
        assert status_within(2.0, lambda: open_post(client, till, REDEEM, by_card), 201) == 201
        tmall = order_body({"card_no": card_no}, "O-9", channel="tmall")
        error = assert_envelope(open_post(client, till, ORDERS, tmall), 403, "forbidden")
        assert error["details"]["reason"] == "channel_not_allowed"

        back = cli(app, "partners", "configure", till.app_key, "--untrusted", "--channels", "*")

        assert back.exit_code == 0, back.output
        assert (json.loads(back.output)["channels"], json.loads(back.output)["trusted"]) == (
            None,
            False,
        )
        again = redeem_body({"card_no": card_no}, 100, "T-2")
        assert status_within(2.0, lambda: open_post(client, till, REDEEM, again), 403) == 403
        assert open_post(client, till, ORDERS, tmall).status_code == 201
