"""The open API's money paths over HTTP: POST /open/v1/orders, /open/v1/refunds and
/open/v1/points/redeem, signed as a store system signs them."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.members.models import Member
from app.orders.models import Order, OrderItem, Refund
from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.tiers.models import Tier
from tests.support.http import PHONE, assert_envelope, bearer
from tests.support.signing import PartnerKeys, open_post, signed_headers

ORDERS = "/open/v1/orders"
REFUNDS = "/open/v1/refunds"
REDEEM = "/open/v1/points/redeem"
ORDER_FIELDS = {"order_id", "member_id", "points_earned", "tier"}


def item(amount_cents: int, **changes: Any) -> dict[str, Any]:
    return {
        "sku": "SKU-LATTE",
        "name": "拿铁",
        "category": "drinks",
        "brand": "House",
        "quantity": 1,
        "amount_cents": amount_cents,
    } | changes


def order_body(
    who: dict[str, Any], external_id: str = "pos-1", amount_cents: int = 12_345, **changes: Any
) -> dict[str, Any]:
    return {
        "channel": "pos",
        "external_id": external_id,
        "member": who,
        "store_code": "SH-001",
        "paid_at": "2026-05-04T09:30:00+08:00",
        "amount_cents": amount_cents,
        "items": [item(amount_cents)],
    } | changes


def refund_body(external_order_id: str, external_id: str, amount_cents: int) -> dict[str, Any]:
    return {
        "channel": "pos",
        "external_order_id": external_order_id,
        "external_id": external_id,
        "amount_cents": amount_cents,
    }


def redeem_body(who: dict[str, Any], points: int, external_id: str) -> dict[str, Any]:
    return {"member": who, "points": points, "external_id": external_id, "store_code": "SH-001"}


def balance(session, member_id: int) -> int:
    session.expire_all()
    account = session.get(PointsAccount, member_id)
    return 0 if account is None else account.balance


def entries(session, member_id: int) -> list[tuple[int, str, int]]:
    session.expire_all()
    rows = session.execute(
        select(PointsEntry.delta, PointsEntry.kind, PointsEntry.balance_after)
        .where(PointsEntry.member_id == member_id)
        .order_by(PointsEntry.id)
    ).all()
    return [tuple(row) for row in rows]


def open_lots(session, member_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
                PointsLot.member_id == member_id
            )
        )
    )


def fields_of(response, status: int = 422) -> dict[str, Any]:
    return dict(assert_envelope(response, status, "validation_error")["details"]["fields"])


class TestRecordOrder:
    def test_a_new_order_is_201_and_earns_a_point_per_yuan(
        self, client, partner, card_no, member_id, session
    ):
        answer = open_post(client, partner, ORDERS, order_body({"card_no": card_no}))

        assert answer.status_code == 201, answer.get_json()
        body = answer.get_json()
        assert set(body) == ORDER_FIELDS
        assert body["member_id"] == member_id
        assert body["points_earned"] == 123  # floor(123.45 yuan)
        assert body["tier"] is None  # no tiers configured
        order = session.get(Order, body["order_id"])
        assert (order.channel, order.external_id, order.member_id) == ("pos", "pos-1", member_id)
        assert order.amount_cents == 12_345
        assert order.paid_at == datetime(2026, 5, 4, 1, 30, tzinfo=UTC)
        items = session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)).all()
        assert [(i.sku, i.category, i.brand, i.quantity, i.amount_cents) for i in items] == [
            ("SKU-LATTE", "drinks", "House", 1, 12_345)
        ]
        assert entries(session, member_id) == [(123, "earn", 123)]
        assert balance(session, member_id) == open_lots(session, member_id) == 123

    def test_the_same_order_again_is_200_with_the_first_answer_and_earns_once(
        self, client, partner, card_no, member_id, session, count
    ):
        body = order_body({"card_no": card_no})
        first = open_post(client, partner, ORDERS, body)
        assert first.status_code == 201
        again = open_post(client, partner, ORDERS, body)

        assert again.status_code == 200, again.get_json()
        assert again.get_json() == first.get_json()
        assert count(Order) == 1
        assert entries(session, member_id) == [(123, "earn", 123)]

    def test_a_replay_with_another_amount_is_409_mismatch_and_changes_nothing(
        self, client, partner, card_no, member_id, session, count
    ):
        first = open_post(client, partner, ORDERS, order_body({"card_no": card_no}))
        assert first.status_code == 201
        again = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, amount_cents=99_900)
        )
        error = assert_envelope(again, 409, "idempotency_mismatch")
        assert error["details"] == {}
        assert count(Order) == 1
        assert balance(session, member_id) == 123

    def test_an_idempotency_key_reused_for_another_order_is_409_mismatch(
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

    def test_the_same_external_id_on_another_channel_is_another_order(
        self, client, partner, card_no, count
    ):
        first = open_post(client, partner, ORDERS, order_body({"card_no": card_no}))
        other = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, channel="tmall")
        )
        assert first.status_code == other.status_code == 201
        assert other.get_json()["order_id"] != first.get_json()["order_id"]
        assert count(Order) == 2

    def test_the_answer_names_the_tier_the_order_lifted_the_member_to(
        self, client, partner, card_no, member_id, session
    ):
        session.add_all(
            [
                Tier(code="silver", name="银卡", rank=1, threshold=0, benefits={}),
                Tier(
                    code="gold",
                    name="金卡",
                    rank=2,
                    threshold=100_000,
                    benefits={"points_multiplier_pct": 150},
                ),
            ]
        )
        session.commit()
        small = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, "pos-a", 50_000)
        )
        assert small.get_json()["tier"] == {"code": "silver", "name": "银卡", "benefits": {}}
        crossing = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, "pos-b", 60_000)
        )
        # Earned at the tier held when paying (silver, 100 %), then lifted to gold.
        assert crossing.get_json()["points_earned"] == 600
        assert crossing.get_json()["tier"] == {
            "code": "gold",
            "name": "金卡",
            "benefits": {"points_multiplier_pct": 150},
        }
        after = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, "pos-c", 10_000)
        )
        assert after.get_json()["points_earned"] == 150
        assert balance(session, member_id) == 500 + 600 + 150


class TestMemberReference:
    def test_by_phone(self, client, partner, member_id):
        answer = open_post(client, partner, ORDERS, order_body({"phone": PHONE}))
        assert answer.status_code == 201
        assert answer.get_json()["member_id"] == member_id

    def test_by_unionid(self, client, partner, member_id):
        answer = open_post(client, partner, ORDERS, order_body({"unionid": "u-orders"}))
        assert answer.status_code == 201
        assert answer.get_json()["member_id"] == member_id

    def test_by_a_fresh_card_qr_payload(self, client, partner, member, member_id):
        card = client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()
        answer = open_post(client, partner, ORDERS, order_body({"qr_payload": card["qr_payload"]}))
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json()["member_id"] == member_id

    def test_an_expired_qr_payload_is_409_and_records_nothing(
        self, client, partner, member, frozen, count
    ):
        card = client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()
        frozen.shift(timedelta(seconds=61))
        answer = open_post(client, partner, ORDERS, order_body({"qr_payload": card["qr_payload"]}))
        assert assert_envelope(answer, 409, "conflict")["details"]["reason"] == "qr_expired"
        assert count(Order) == 0

    def test_a_forged_qr_payload_is_422(self, client, partner, member, count):
        card = client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()
        forged = card["qr_payload"][:-1] + ("0" if card["qr_payload"][-1] != "0" else "1")
        answer = open_post(client, partner, ORDERS, order_body({"qr_payload": forged}))
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"]["field"] == "member.qr_payload"
        assert count(Order) == 0

    def test_by_channel_member_id_creates_the_member_once_per_channel(
        self, client, partner, frozen, session, count
    ):
        members_before = count(Member)
        first = open_post(
            client, partner, ORDERS, order_body({"channel_member_id": "tm-42"}, "pos-1")
        )
        second = open_post(
            client, partner, ORDERS, order_body({"channel_member_id": "tm-42"}, "pos-2")
        )
        assert first.status_code == second.status_code == 201
        assert first.get_json()["member_id"] == second.get_json()["member_id"]
        assert count(Member) == members_before + 1
        elsewhere = open_post(
            client,
            partner,
            ORDERS,
            order_body({"channel_member_id": "tm-42"}, "jd-1", channel="jd"),
        )
        assert elsewhere.status_code == 201
        assert elsewhere.get_json()["member_id"] != first.get_json()["member_id"]
        created = session.get(Member, first.get_json()["member_id"])
        assert created.registration_channel == "pos"

    def test_an_unknown_phone_creates_a_member_with_that_phone(
        self, client, partner, frozen, session
    ):
        answer = open_post(client, partner, ORDERS, order_body({"phone": "13900001111"}))
        assert answer.status_code == 201
        created = session.get(Member, answer.get_json()["member_id"])
        assert created.phone == "13900001111"
        again = open_post(client, partner, ORDERS, order_body({"phone": "13900001111"}, "pos-2"))
        assert again.get_json()["member_id"] == created.id

    def test_two_member_keys_at_once_is_422(self, client, partner, card_no, count):
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no, "phone": PHONE})
        )
        assert "member" in fields_of(answer)
        assert count(Order) == 0

    def test_no_member_key_is_422(self, client, partner, frozen, count):
        assert "member" in fields_of(open_post(client, partner, ORDERS, order_body({})))
        assert count(Order) == 0

    def test_an_unknown_card_is_404_and_creates_no_member(self, client, partner, frozen, count):
        members_before = count(Member)
        answer = open_post(client, partner, ORDERS, order_body({"card_no": "100000000009"}))
        error = assert_envelope(answer, 404, "not_found")
        assert error["details"]["field"] == "member.card_no"
        assert count(Member) == members_before
        assert count(Order) == 0


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
    def test_a_partial_refund_reverses_in_proportion(
        self, client, partner, ordered, member_id, session
    ):
        answer = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", 2_500))

        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json()["points_reversed"] == 25
        order = session.get(Order, ordered["order_id"])
        session.refresh(order)
        assert (order.refunded_cents, order.points_reversed) == (2_500, 25)
        assert entries(session, member_id) == [(100, "earn", 100), (-25, "reverse", 75)]
        assert balance(session, member_id) == open_lots(session, member_id) == 75

    def test_partial_refunds_add_up_to_exactly_what_was_earned(
        self, client, partner, card_no, member_id, session
    ):
        open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "pos-odd", 999))
        first = open_post(client, partner, REFUNDS, refund_body("pos-odd", "rf-a", 500))
        second = open_post(client, partner, REFUNDS, refund_body("pos-odd", "rf-b", 499))
        # 9 points earned; floor(9 * 500 / 999) = 4 back first, the other 5 with the rest.
        assert first.get_json()["points_reversed"] == 4
        assert second.get_json()["points_reversed"] == 5
        assert balance(session, member_id) == 0

    def test_a_replayed_refund_is_200_with_the_first_answer_and_reverses_once(
        self, client, partner, ordered, member_id, session, count
    ):
        body = refund_body("pos-r", "rf-1", 2_500)
        first = open_post(client, partner, REFUNDS, body)
        again = open_post(client, partner, REFUNDS, body)
        assert first.status_code == 201
        assert again.status_code == 200
        assert again.get_json() == first.get_json()
        assert count(Refund) == 1
        assert balance(session, member_id) == 75

    def test_a_refund_beyond_the_order_is_409_and_changes_nothing(
        self, client, partner, ordered, member_id, session, count
    ):
        first = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", 6_000))
        assert first.status_code == 201
        answer = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-2", 4_001))
        error = assert_envelope(answer, 409, "conflict")
        assert error["details"]["refundable_cents"] == 4_000
        assert count(Refund) == 1
        assert balance(session, member_id) == 40
        rest = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-3", 4_000))
        assert rest.status_code == 201
        assert rest.get_json()["points_reversed"] == 40

    def test_a_refund_of_an_unknown_order_is_404(self, client, partner, ordered, count):
        answer = open_post(client, partner, REFUNDS, refund_body("pos-nope", "rf-1", 100))
        assert assert_envelope(answer, 404, "not_found")["details"]["field"] == (
            "external_order_id"
        )
        wrong_channel = refund_body("pos-r", "rf-2", 100) | {"channel": "tmall"}
        assert_envelope(open_post(client, partner, REFUNDS, wrong_channel), 404, "not_found")
        assert count(Refund) == 0

    @pytest.mark.parametrize("amount", [0, -5, "100", 1.5], ids=repr)
    def test_a_bad_refund_amount_is_422(self, client, partner, ordered, amount, count):
        answer = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", amount))
        assert "amount_cents" in fields_of(answer)
        assert count(Refund) == 0

    def test_refunding_spent_points_leaves_a_debt_the_next_order_settles(
        self, client, partner, ordered, card_no, member_id, session
    ):
        spent = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 80, "t-1"))
        assert spent.get_json()["balance"] == 20
        refund = open_post(client, partner, REFUNDS, refund_body("pos-r", "rf-1", 10_000))
        assert refund.get_json() == {
            "refund_id": refund.get_json()["refund_id"],
            "points_reversed": 100,
            "debt_added": 80,
        }
        assert balance(session, member_id) == 0
        open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "pos-next", 10_000))
        assert balance(session, member_id) == open_lots(session, member_id) == 20
        assert entries(session, member_id)[-2:] == [(100, "earn", 100), (-80, "reverse", 20)]


class TestRedeem:
    @pytest.fixture
    def thousand(self, client, partner, card_no, member_id) -> None:
        answer = open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, "pos-k", 100_000)
        )
        assert answer.get_json()["points_earned"] == 1_000

    def test_a_redemption_is_201_with_the_balance_left(
        self, client, partner, thousand, card_no, member_id, session
    ):
        answer = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 300, "t-1"))
        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json() == {"member_id": member_id, "balance": 700}
        assert entries(session, member_id)[-1] == (-300, "spend", 700)
        assert balance(session, member_id) == open_lots(session, member_id) == 700

    def test_by_phone_too(self, client, partner, thousand, member_id):
        answer = open_post(client, partner, REDEEM, redeem_body({"phone": PHONE}, 1, "t-1"))
        assert answer.status_code == 201
        assert answer.get_json()["balance"] == 999

    def test_a_replay_gives_the_same_answer_and_spends_once(
        self, client, partner, thousand, card_no, member_id, session
    ):
        body = redeem_body({"card_no": card_no}, 300, "t-1")
        first = open_post(client, partner, REDEEM, body)
        open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 100, "t-2"))
        again = open_post(client, partner, REDEEM, body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()
        assert again.get_json()["balance"] == 700
        assert balance(session, member_id) == 600
        assert [kind for _, kind, _ in entries(session, member_id)] == ["earn", "spend", "spend"]

    def test_insufficient_points_is_409_and_changes_nothing(
        self, client, partner, thousand, card_no, member_id, session
    ):
        before = entries(session, member_id)
        answer = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 1_001, "t-1"))
        error = assert_envelope(answer, 409, "insufficient_points")
        assert error["details"] == {"balance": 1_000, "requested": 1_001}
        assert entries(session, member_id) == before
        assert balance(session, member_id) == open_lots(session, member_id) == 1_000
        # The refused external_id is not used up: the same spend within the balance works.
        fits = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 1_000, "t-1"))
        assert fits.status_code == 201
        assert fits.get_json()["balance"] == 0

    def test_the_same_external_id_with_another_amount_is_409_mismatch(
        self, client, partner, thousand, card_no, member_id, session
    ):
        open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 300, "t-1"))
        answer = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 301, "t-1"))
        assert_envelope(answer, 409, "idempotency_mismatch")
        assert balance(session, member_id) == 700

    def test_an_unknown_member_is_404_and_no_member_is_created(
        self, client, partner, frozen, count
    ):
        members_before = count(Member)
        answer = open_post(client, partner, REDEEM, redeem_body({"phone": "13900002222"}, 1, "t"))
        assert_envelope(answer, 404, "not_found")
        assert count(Member) == members_before

    @pytest.mark.parametrize("points", [0, -1, "10", 1.5, True], ids=repr)
    def test_bad_points_are_422(self, client, partner, thousand, card_no, points, session):
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


# Retries and edges a store system meets in the field.


def test_a_till_retry_after_the_qr_expired_answers_the_first_spend(
    client: FlaskClient, partner: PartnerKeys, member: dict[str, Any], card_no: str, frozen: Any
) -> None:
    assert (
        open_post(
            client, partner, ORDERS, order_body({"card_no": card_no}, amount_cents=50_000)
        ).status_code
        == 201
    )
    qr = client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()["qr_payload"]
    first = open_post(client, partner, REDEEM, redeem_body({"qr_payload": qr}, 100, "T-QR"))
    assert first.status_code == 201, first.get_json()

    frozen.shift(timedelta(minutes=5))  # the QR code has expired; the till retries
    again = open_post(client, partner, REDEEM, redeem_body({"qr_payload": qr}, 100, "T-QR"))

    assert (again.status_code, again.get_json()) == (200, first.get_json())
    assert first.get_json()["balance"] == 400


def test_a_refund_external_id_reused_for_another_order_is_refused(
    client: FlaskClient, partner: PartnerKeys, card_no: str
) -> None:
    for external_id in ("O-1", "O-2"):
        body = order_body({"card_no": card_no}, external_id=external_id, amount_cents=10_000)
        assert open_post(client, partner, ORDERS, body).status_code == 201
    assert open_post(client, partner, REFUNDS, refund_body("O-1", "R1", 10_000)).status_code == 201

    reused = open_post(client, partner, REFUNDS, refund_body("O-2", "R1", 10_000))

    assert_envelope(reused, 409, "idempotency_mismatch")


def test_an_absurd_timestamp_is_401_not_500(client: FlaskClient, partner: PartnerKeys) -> None:
    headers = signed_headers(partner, "GET", "/open/v1/members/lookup?card_no=1")
    headers["X-Timestamp"] = "9" * 5000
    response = client.get("/open/v1/members/lookup?card_no=1", headers=headers)
    assert_envelope(response, 401, "unauthorized")


def test_paid_at_outside_the_plausible_range_is_422(
    client: FlaskClient, partner: PartnerKeys, card_no: str
) -> None:
    for paid_at in (
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T01:00:00+14:00",
        "1999-12-31T00:00:00+08:00",
    ):
        body = order_body({"card_no": card_no}, paid_at=paid_at)
        response = open_post(client, partner, ORDERS, body)
        assert_envelope(response, 422, "validation_error")


def test_a_limit_of_thousands_of_digits_is_422(
    client: FlaskClient, partner: PartnerKeys, member: dict[str, Any]
) -> None:
    response = client.get(
        "/mp/v1/points/ledger?limit=" + "9" * 5000, headers=bearer(member["token"])
    )
    assert_envelope(response, 422, "validation_error")
