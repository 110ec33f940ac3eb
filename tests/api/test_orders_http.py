"""The open API's money paths over HTTP: POST /open/v1/orders, /open/v1/refunds and
/open/v1/points/redeem, signed as a store system signs them.

The contract only: each answer's status and shape, replays, the request checks only the
HTTP layer makes, signatures, and how domain errors are answered. What the orders earn,
refund and spend is tested against the services in tests/services/test_order_*.py and
test_till_redemption.py."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.members.models import Member
from app.orders.models import Order, Refund
from tests.factories import TierFactory
from tests.support.http import PHONE, assert_envelope, bearer
from tests.support.open_api import (
    ORDERS,
    REDEEM,
    REFUNDS,
    card_qr,
    entries,
    item,
    order_body,
    redeem_body,
    refund_body,
)
from tests.support.signing import PartnerKeys, open_post, signed_headers


def fields_of(response, status: int = 422) -> dict[str, Any]:
    return dict(assert_envelope(response, status, "validation_error")["details"]["fields"])


class TestRecordOrder:
    def test_a_new_order_is_201_with_the_order_member_points_and_tier(
        self, client, partner, card_no, member_id, session
    ):
        TierFactory(code="silver", name="银卡", rank=1, threshold=0, benefits={})
        session.commit()

        answer = open_post(client, partner, ORDERS, order_body({"card_no": card_no}))

        assert answer.status_code == 201, answer.get_json()
        body = answer.get_json()
        assert body == {
            "order_id": body["order_id"],
            "member_id": member_id,
            "points_earned": 123,  # floor(123.45 yuan)
            "tier": {"code": "silver", "name": "银卡", "benefits": {}},
        }
        assert isinstance(body["order_id"], int)

    def test_the_same_order_again_is_200_with_exactly_the_first_body(
        self, client, partner, card_no
    ):
        body = order_body({"card_no": card_no})
        first = open_post(client, partner, ORDERS, body)
        again = open_post(client, partner, ORDERS, body)

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()

    def test_an_idempotency_key_replays_the_first_response_and_refuses_another_body(
        self, client, partner, card_no, count
    ):
        def post(body):
            raw = json.dumps(body).encode()
            headers = signed_headers(partner, "POST", ORDERS, raw)
            headers |= {"Content-Type": "application/json", "Idempotency-Key": "k-order-1"}
            return client.post(ORDERS, data=raw, headers=headers)

        first = post(order_body({"card_no": card_no}))
        assert first.status_code == 201
        again = post(order_body({"card_no": card_no}))
        assert (again.status_code, again.get_data()) == (201, first.get_data())
        assert again.headers.get("Idempotent-Replayed") == "true"
        other = post(order_body({"card_no": card_no}, "pos-2"))
        assert_envelope(other, 409, "idempotency_mismatch")
        assert count(Order) == 1


class TestMemberReference:
    """Finding the member by each kind of reference: tests/services/test_order_recording.py."""

    def test_a_forged_qr_payload_is_422_naming_it(self, client, partner, member, count):
        payload = card_qr(client, member)
        forged = payload[:-1] + ("0" if payload[-1] != "0" else "1")
        answer = open_post(client, partner, ORDERS, order_body({"qr_payload": forged}))
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"]["field"] == "member.qr_payload"
        assert count(Order) == 0

    @pytest.mark.parametrize(
        "who", [{"card_no": "100000000009", "phone": PHONE}, {}], ids=["two", "none"]
    )
    def test_not_exactly_one_member_key_is_422(self, client, partner, frozen, who, count):
        assert "member" in fields_of(open_post(client, partner, ORDERS, order_body(who)))
        assert count(Order) == 0

    def test_an_unknown_card_is_404_naming_the_field(self, client, partner, frozen):
        answer = open_post(client, partner, ORDERS, order_body({"card_no": "100000000009"}))
        error = assert_envelope(answer, 404, "not_found")
        assert error["details"]["field"] == "member.card_no"


class TestOrderValidation:
    @pytest.mark.parametrize("amount", ["100", 1.5, True, -1, None], ids=repr)
    def test_a_bad_amount_is_422_naming_it(self, client, partner, card_no, amount, count):
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, amount_cents=amount)
        )
        assert "amount_cents" in fields_of(answer)
        assert count(Order) == 0

    def test_missing_items_is_422_naming_them(self, client, partner, card_no, count):
        body = order_body({"card_no": card_no})
        del body["items"]
        assert "items" in fields_of(open_post(client, partner, ORDERS, body))
        assert count(Order) == 0

    def test_an_empty_item_list_is_422(self, client, partner, card_no):
        answer = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, items=[]))
        assert "items" in fields_of(answer)

    def test_paid_at_without_an_offset_is_422_naming_it(self, client, partner, card_no, count):
        answer = open_post(
            client,
            partner,
            ORDERS,
            order_body({"card_no": card_no}, paid_at="2026-05-04T09:30:00"),
        )
        assert "paid_at" in fields_of(answer)
        assert count(Order) == 0

    @pytest.mark.parametrize(
        "paid_at",
        ["9999-12-31T23:00:00-05:00", "0001-01-01T01:00:00+14:00", "1999-12-31T00:00:00+08:00"],
    )
    def test_paid_at_outside_the_plausible_range_is_422(self, client, partner, card_no, paid_at):
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, paid_at=paid_at)
        )
        assert "paid_at" in fields_of(answer)

    def test_an_unknown_field_inside_an_item_is_422_naming_it(
        self, client, partner, card_no, count
    ):
        answer = open_post(
            client,
            partner,
            ORDERS,
            order_body({"card_no": card_no}, items=[item(12_345, colour="red")]),
        )
        assert fields_of(answer) == {"items": {"0": {"colour": ["Unknown field."]}}}
        assert count(Order) == 0

    def test_an_unknown_top_level_field_is_422_naming_it(self, client, partner, card_no):
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, discount_cents=5)
        )
        assert "discount_cents" in fields_of(answer)

    @pytest.mark.parametrize("quantity", [0, "1", 2.5], ids=repr)
    def test_a_bad_item_quantity_is_422_naming_it(self, client, partner, card_no, quantity):
        answer = open_post(
            client,
            partner,
            ORDERS,
            order_body({"card_no": card_no}, items=[item(12_345, quantity=quantity)]),
        )
        assert "quantity" in fields_of(answer)["items"]["0"]

    @pytest.mark.parametrize("channel", ["POS", "Tmall", "", "pos-1", "a" * 17], ids=repr)
    def test_a_channel_that_is_not_a_lowercase_code_is_422(
        self, client, partner, card_no, channel, count
    ):
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, channel=channel)
        )
        assert "channel" in fields_of(answer)
        assert count(Order) == 0

    def test_an_external_id_over_64_characters_is_422(self, client, partner, card_no):
        answer = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "x" * 65))
        assert "external_id" in fields_of(answer)


@pytest.fixture
def ordered(client, partner, card_no, member_id) -> dict[str, Any]:
    """An order of 100 yuan: 100 points."""
    answer = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "pos-r", 10_000))
    assert answer.status_code == 201
    assert answer.get_json()["points_earned"] == 100
    return dict(answer.get_json())


class TestRefund:
    """Proportions, debts and what a refund may refund: tests/services/test_order_refunds.py."""

    def test_a_refund_is_201_with_the_points_reversed_and_the_debt_added(
        self, client, partner, ordered
    ):
        answer = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", 2_500))

        assert answer.status_code == 201, answer.get_json()
        body = answer.get_json()
        assert body == {"refund_id": body["refund_id"], "points_reversed": 25, "debt_added": 0}
        assert isinstance(body["refund_id"], int)

    def test_the_same_refund_again_is_200_with_exactly_the_first_body(
        self, client, partner, ordered
    ):
        body = refund_body("pos-r", "rf-1", 2_500)
        first = open_post(client, partner, REFUNDS, body)
        again = open_post(client, partner, REFUNDS, body)

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()

    def test_a_refund_beyond_the_order_is_409_conflict_naming_what_is_left(
        self, client, partner, ordered
    ):
        first = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", 6_000))
        assert first.status_code == 201
        answer = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-2", 4_001))
        error = assert_envelope(answer, 409, "conflict")
        assert error["details"] == {"refundable_cents": 4_000}

    @pytest.mark.parametrize("amount", [0, -5, "100", 1.5], ids=repr)
    def test_a_bad_refund_amount_is_422(self, client, partner, ordered, amount, count):
        answer = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", amount))
        assert "amount_cents" in fields_of(answer)
        assert count(Refund) == 0


class TestRedeem:
    """Who may spend by which reference, and replays: tests/services/test_order_partners.py
    and test_order_replays.py."""

    @pytest.fixture
    def thousand(self, client, partner, card_no, member_id) -> None:
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, "pos-k", 100_000)
        )
        assert answer.get_json()["points_earned"] == 1_000

    def test_a_spend_by_the_card_qr_code_is_201_with_the_balance_left(
        self, client, make_partner, thousand, member, member_id
    ):
        till = make_partner("Store till")  # not trusted: the member shows the card
        body = redeem_body({"qr_payload": card_qr(client, member)}, 300, "t-1")

        answer = open_post(client, till, REDEEM, body)

        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json() == {"member_id": member_id, "balance": 700}

    def test_the_same_spend_again_is_200_with_exactly_the_first_body(
        self, client, partner, thousand, card_no
    ):
        body = redeem_body({"card_no": card_no}, 300, "t-1")
        first = open_post(client, partner, REDEEM, body)
        open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 100, "t-2"))
        again = open_post(client, partner, REDEEM, body)

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()  # the balance the first spend left: 700

    def test_a_short_balance_is_409_insufficient_points_with_both_figures(
        self, client, partner, thousand, card_no
    ):
        answer = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 1_001, "t-1"))
        error = assert_envelope(answer, 409, "insufficient_points")
        assert error["details"] == {"balance": 1_000, "requested": 1_001}

    @pytest.mark.parametrize("points", [0, -1, "10", 1.5, True], ids=repr)
    def test_bad_points_are_422(self, client, partner, thousand, card_no, points):
        answer = open_post(
            client, partner, REDEEM, redeem_body({"card_no": card_no}, points, "t-1")
        )
        assert "points" in fields_of(answer)


class TestUnsigned:
    @pytest.mark.parametrize(
        ("path", "body"),
        [
            (ORDERS, order_body({"phone": "13900003333"})),
            (REFUNDS, refund_body("pos-r", "rf-x", 100)),
            (REDEEM, redeem_body({"phone": PHONE}, 1, "t-x")),
        ],
        ids=["orders", "refunds", "redeem"],
    )
    def test_an_unsigned_call_is_401_and_changes_nothing(
        self, client, partner, ordered, member_id, session, count, path, body
    ):
        before = (count(Order), count(Refund), count(Member), entries(session, member_id))
        answer = client.post(path, json=body)
        assert_envelope(answer, 401, "unauthorized")
        assert (count(Order), count(Refund), count(Member), entries(session, member_id)) == before

    def test_a_body_changed_after_signing_is_401(self, client, partner, card_no, count):
        raw = json.dumps(order_body({"card_no": card_no})).encode()
        headers = signed_headers(partner, "POST", ORDERS, raw)
        tampered = raw.replace(b"12345", b"99999")
        answer = client.post(
            ORDERS, data=tampered, headers=headers | {"Content-Type": "application/json"}
        )
        assert assert_envelope(answer, 401, "unauthorized")["details"]["reason"] == (
            "bad_signature"
        )
        assert count(Order) == 0


def test_an_absurd_timestamp_is_401_not_500(client: FlaskClient, partner: PartnerKeys) -> None:
    headers = signed_headers(partner, "GET", "/open/v1/members/lookup?card_no=1")
    headers["X-Timestamp"] = "9" * 5000
    response = client.get("/open/v1/members/lookup?card_no=1", headers=headers)
    assert_envelope(response, 401, "unauthorized")


def test_a_limit_of_thousands_of_digits_is_422(
    client: FlaskClient, partner: PartnerKeys, member: dict[str, Any]
) -> None:
    response = client.get(
        "/mp/v1/points/ledger?limit=" + "9" * 5000, headers=bearer(member["token"])
    )
    assert_envelope(response, 422, "validation_error")
