"""Issue 6, the open API's partners: replays compare the whole request, each partner sees
and changes only its own orders on the channels it was given, and spending points needs
the member at the till (the card QR code) unless the partner is trusted."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.external_ids.models import ExternalRequest
from app.orders.models import Order, Refund
from app.partners.models import Partner
from app.partners.services import find_partner
from tests.api.test_admin import cli
from tests.api.test_orders_http import (
    ORDERS,
    REDEEM,
    REFUNDS,
    balance,
    entries,
    item,
    order_body,
    redeem_body,
    refund_body,
)
from tests.support.http import PHONE, T0, assert_envelope, bearer
from tests.support.signing import open_get, open_post


def partner_id_of(session, keys) -> int:
    return int(session.scalar(select(Partner.id).where(Partner.app_key == keys.app_key)))


def earn(client, keys, card_no: str, external_id: str = "seed", amount: int = 100_000) -> None:
    answer = open_post(client, keys, ORDERS, order_body({"card_no": card_no}, external_id, amount))
    assert answer.status_code == 201, answer.get_json()


def fresh_qr(client, member) -> str:
    card = client.get("/mp/v1/card", headers=bearer(member["token"]))
    return str(card.get_json()["qr_payload"])


def assert_reveals_nothing(error: dict[str, Any], *secrets: Any) -> None:
    assert error["details"] == {}
    text = json.dumps(error, ensure_ascii=False)
    for secret in secrets:
        assert str(secret) not in text


# --- 1. replays compare the whole request ---


class TestOrderReplays:
    def test_an_identical_replay_is_200_with_exactly_the_first_body(
        self, client, partner, card_no, count
    ):
        body = order_body({"card_no": card_no})
        first = open_post(client, partner, ORDERS, body)
        again = open_post(client, partner, ORDERS, body)

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()
        assert count(Order) == 1

    def test_the_same_instant_written_in_another_offset_is_the_same_request(
        self, client, partner, card_no
    ):
        first = open_post(client, partner, ORDERS, order_body({"card_no": card_no}))
        utc = order_body({"card_no": card_no}, paid_at="2026-05-04T01:30:00Z")
        again = open_post(client, partner, ORDERS, utc)

        assert again.status_code == 200
        assert again.get_data() == first.get_data()

    @pytest.mark.parametrize(
        "change",
        [
            {"member": {"phone": PHONE}},  # the same member, named another way
            {"member": {"phone": "13900000001"}},  # another member
            {"amount_cents": 12_346},
            {"store_code": "SH-002"},
            {"paid_at": "2026-05-04T09:31:00+08:00"},
            {"items": [item(12_345, quantity=2)]},
            {"coupon_codes": ["C-1"]},
        ],
        ids=["same-member-by-phone", "other-member", "amount", "store", "paid_at", "items",
             "coupons"],
    )  # fmt: skip
    def test_anything_different_is_409_mismatch_revealing_nothing(
        self, client, partner, card_no, member_id, session, count, change
    ):
        first = open_post(client, partner, ORDERS, order_body({"card_no": card_no}))
        assert first.status_code == 201
        before = (balance(session, member_id), count(Order))

        again = open_post(client, partner, ORDERS, order_body({"card_no": card_no}) | change)

        error = assert_envelope(again, 409, "idempotency_mismatch")
        assert_reveals_nothing(error, member_id, card_no, 12_345, first.get_json()["order_id"])
        assert (balance(session, member_id), count(Order)) == before


class TestRefundReplays:
    def test_an_identical_replay_is_200_with_exactly_the_first_body(
        self, client, partner, card_no, member_id, session, count
    ):
        earn(client, partner, card_no, "O-1", 10_000)
        first = open_post(client, partner, REFUNDS, refund_body("O-1", "R-1", 4_000))
        again = open_post(client, partner, REFUNDS, refund_body("O-1", "R-1", 4_000))

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()
        assert count(Refund) == 1
        assert balance(session, member_id) == 60

    @pytest.mark.parametrize(
        "change", [{"amount_cents": 3_000}, {"external_order_id": "O-2"}], ids=["amount", "order"]
    )
    def test_anything_different_is_409_mismatch_revealing_nothing(
        self, client, partner, card_no, member_id, session, count, change
    ):
        earn(client, partner, card_no, "O-1", 10_000)
        earn(client, partner, card_no, "O-2", 10_000)
        assert open_post(client, partner, REFUNDS, refund_body("O-1", "R-1", 4_000)).status_code
        before = (balance(session, member_id), count(Refund))

        again = open_post(client, partner, REFUNDS, refund_body("O-1", "R-1", 4_000) | change)

        error = assert_envelope(again, 409, "idempotency_mismatch")
        assert_reveals_nothing(error, 4_000, "O-1", member_id)
        assert (balance(session, member_id), count(Refund)) == before


class TestRedemptionReplays:
    def test_an_identical_replay_is_200_with_exactly_the_first_body(
        self, client, partner, card_no, member_id, session
    ):
        earn(client, partner, card_no)
        first = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 300, "T-1"))
        again = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 300, "T-1"))

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.get_data() == first.get_data()
        assert balance(session, member_id) == 700

    @pytest.mark.parametrize(
        "change",
        [
            {"points": 301},
            {"member": {"phone": PHONE}},
            {"member": {"card_no": "999999999999"}},
            {"store_code": "SH-009"},
        ],
        ids=["points", "same-member-by-phone", "other-card", "store"],
    )
    def test_anything_different_is_409_mismatch_revealing_nothing(
        self, client, partner, card_no, member_id, session, change
    ):
        earn(client, partner, card_no)
        first = open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 300, "T-1"))
        assert first.status_code == 201
        before = entries(session, member_id)

        body = redeem_body({"card_no": card_no}, 300, "T-1") | change
        error = assert_envelope(
            open_post(client, partner, REDEEM, body), 409, "idempotency_mismatch"
        )

        assert_reveals_nothing(error, member_id, card_no, 300, 700)
        assert entries(session, member_id) == before


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
    def test_orders_refunds_and_spends_record_their_partner(
        self, client, partner, card_no, session
    ):
        earn(client, partner, card_no, "O-1", 10_000)
        open_post(client, partner, REFUNDS, refund_body("O-1", "R-1", 1_000))
        open_post(client, partner, REDEEM, redeem_body({"card_no": card_no}, 5, "T-1"))
        session.expire_all()

        mine = partner_id_of(session, partner)
        assert session.scalar(select(Order.partner_id)) == mine
        assert session.scalar(select(Refund.partner_id)) == mine
        kinds = session.execute(
            select(ExternalRequest.kind, ExternalRequest.partner_id).order_by(ExternalRequest.id)
        ).all()
        assert [tuple(row) for row in kinds] == [
            ("order", mine),
            ("refund", mine),
            ("till_spend", mine),
        ]

    def test_two_partners_may_use_the_same_external_id_without_seeing_each_other(
        self, client, partner, make_partner, card_no, member_id, session, count
    ):
        other = make_partner("ERP")
        mine = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "SAME-1"))
        theirs = open_post(
            client, other, ORDERS, order_body({"card_no": card_no}, "SAME-1", amount_cents=500)
        )

        assert (mine.status_code, theirs.status_code) == (201, 201)  # not a mismatch, not a replay
        assert theirs.get_json()["order_id"] != mine.get_json()["order_id"]
        assert count(Order) == 2
        assert balance(session, member_id) == 123 + 5

    def test_another_partners_order_is_404_to_a_refund_and_stays_untouched(
        self, client, partner, make_partner, card_no, member_id, session, count
    ):
        other = make_partner("ERP")
        earn(client, partner, card_no, "O-1", 10_000)

        answer = open_post(client, other, REFUNDS, refund_body("O-1", "R-1", 10_000))

        error = assert_envelope(answer, 404, "not_found")
        assert_reveals_nothing_but_field(error)
        assert count(Refund) == 0
        session.expire_all()
        assert session.scalar(select(Order.refunded_cents)) == 0
        assert balance(session, member_id) == 100

    def test_till_external_ids_are_per_partner(
        self, client, partner, make_partner, card_no, member_id, session
    ):
        other = make_partner("ERP", trusted=True)
        earn(client, partner, card_no)
        body = redeem_body({"card_no": card_no}, 100, "T-1")
        assert open_post(client, partner, REDEEM, body).status_code == 201

        theirs = open_post(client, other, REDEEM, body)

        assert theirs.status_code == 201  # its own spend, not a replay of the first
        assert balance(session, member_id) == 800


def assert_reveals_nothing_but_field(error: dict[str, Any]) -> None:
    assert error["details"] == {"field": "external_order_id"}


class TestChannels:
    def test_an_order_on_a_channel_not_given_is_403_and_records_nothing(
        self, client, make_partner, card_no, count
    ):
        pos_only = make_partner("POS", channels=["pos"])

        answer = open_post(
            client, pos_only, ORDERS, order_body({"card_no": card_no}, channel="tmall")
        )

        error = assert_envelope(answer, 403, "forbidden")
        assert error["details"] == {"reason": "channel_not_allowed", "channel": "tmall"}
        assert count(Order) == 0
        assert (
            open_post(client, pos_only, ORDERS, order_body({"card_no": card_no})).status_code == 201
        )

    def test_a_refund_on_a_channel_not_given_is_403(self, client, make_partner, card_no, count):
        pos_only = make_partner("POS", channels=["pos"])
        earn(client, pos_only, card_no, "O-1", 10_000)

        body = refund_body("O-1", "R-1", 1_000) | {"channel": "jd"}
        error = assert_envelope(open_post(client, pos_only, REFUNDS, body), 403, "forbidden")

        assert error["details"]["reason"] == "channel_not_allowed"
        assert count(Refund) == 0

    def test_a_channel_member_id_spend_on_a_channel_not_given_is_403(
        self, client, make_partner, card_no
    ):
        trusted_pos = make_partner("Mall", channels=["pos"], trusted=True)
        body = redeem_body({"channel_member_id": "TM-1"}, 1, "T-1") | {"channel": "tmall"}

        error = assert_envelope(open_post(client, trusted_pos, REDEEM, body), 403, "forbidden")

        assert error["details"]["reason"] == "channel_not_allowed"


# --- 3. spending points needs the member present ---


@pytest.fixture
def till(make_partner):
    """A store till: not trusted, every channel."""
    return make_partner("Store till")


class TestPresence:
    @pytest.mark.parametrize("kind", ["card_no", "phone", "unionid", "channel_member_id"])
    def test_an_untrusted_partner_cannot_spend_by_a_bare_reference(
        self, client, partner, till, member, card_no, member_id, session, kind
    ):
        earn(client, partner, card_no)
        references = {
            "card_no": card_no,
            "phone": PHONE,
            "unionid": "u-orders",
            "channel_member_id": "POS-1",
        }
        body = redeem_body({kind: references[kind]}, 100, "T-1")
        if kind == "channel_member_id":
            body["channel"] = "pos"
        before = entries(session, member_id)

        error = assert_envelope(open_post(client, till, REDEEM, body), 403, "forbidden")

        assert error["details"] == {"reason": "member_not_present", "field": f"member.{kind}"}
        assert entries(session, member_id) == before

    def test_an_untrusted_partner_spends_with_the_card_qr_code(
        self, client, partner, till, member, card_no, member_id, session
    ):
        earn(client, partner, card_no)

        body = redeem_body({"qr_payload": fresh_qr(client, member)}, 100, "T-1")
        answer = open_post(client, till, REDEEM, body)

        assert answer.status_code == 201, answer.get_json()
        assert answer.get_json() == {"member_id": member_id, "balance": 900}

    @pytest.mark.parametrize("kind", ["card_no", "phone", "unionid"])
    def test_a_trusted_partner_spends_by_any_reference(
        self, client, make_partner, card_no, member_id, session, kind
    ):
        shop = make_partner("Tmall shop", trusted=True)
        earn(client, shop, card_no)
        references = {"card_no": card_no, "phone": PHONE, "unionid": "u-orders"}

        answer = open_post(client, shop, REDEEM, redeem_body({kind: references[kind]}, 100, "T-1"))

        assert answer.status_code == 201, answer.get_json()
        assert balance(session, member_id) == 900

    def test_an_untrusted_partner_still_looks_up_and_posts_orders_by_any_reference(
        self, client, till, card_no, member_id
    ):
        for query in (f"card_no={card_no}", f"phone={PHONE}"):
            found = open_get(client, till, f"/open/v1/members/lookup?{query}")
            assert found.status_code == 200
            assert found.get_json()["member"]["id"] == member_id
        for n, who in enumerate(({"card_no": card_no}, {"phone": PHONE}, {"unionid": "u-orders"})):
            answer = open_post(client, till, ORDERS, order_body(who, f"O-{n}"))
            assert answer.status_code == 201
            assert answer.get_json()["member_id"] == member_id


# --- partners carry their rights ---


def test_the_principal_carries_channels_and_trust(deps, make_partner):
    keys = make_partner("Tmall shop", channels=["tmall", "pos", "tmall"], trusted=True)

    found = find_partner(uow=deps.uow(), app_key=keys.app_key, secret_key=deps.config.secret_key)

    assert found is not None
    assert (found.channels, found.trusted) == (("pos", "tmall"), True)
    assert found.may_use_channel("pos") and not found.may_use_channel("jd")


def test_partners_create_takes_channels_and_trusted(app, session):
    made = cli(app, "partners", "create", "Tmall shop", "--channels", "tmall,pos", "--trusted")
    assert made.exit_code == 0, made.output
    app_key = json.loads(made.output)["app_key"]

    stored = session.scalars(select(Partner).where(Partner.app_key == app_key)).one()
    assert (stored.channels, stored.trusted) == (["pos", "tmall"], True)

    plain = json.loads(cli(app, "partners", "create", "Store POS").output)
    stored = session.scalars(select(Partner).where(Partner.app_key == plain["app_key"])).one()
    assert (stored.channels, stored.trusted) == (None, False)  # every channel, not trusted


@pytest.mark.parametrize("channels", ["", "POS", "pos,", "pos,tm all", "a" * 17])
def test_partners_create_refuses_what_is_not_a_channel_code(app, session, count, channels):
    made = cli(app, "partners", "create", "Bad", "--channels", channels)

    assert made.exit_code != 0
    assert "validation_error" in made.output and "channels" in made.output
    assert count(Partner) == 0


def test_an_order_recorded_before_fingerprints_is_refused_not_recorded_again(
    client, partner, card_no, member_id, session, count
):
    """Rows from before the migration have no fingerprint to compare: the id is taken."""
    session.add(
        Order(
            partner_id=partner_id_of(session, partner),
            channel="pos",
            external_id="OLD-1",
            member_id=member_id,
            paid_at=T0,
            amount_cents=12_345,
            refunded_cents=0,
            points_earned=0,
            points_reversed=0,
        )
    )
    session.commit()

    again = open_post(client, partner, ORDERS, order_body({"card_no": card_no}, "OLD-1"))

    assert_envelope(again, 409, "idempotency_mismatch")
    assert count(Order) == 1
    assert balance(session, member_id) == 0


def status_within(seconds: float, send: Any, expected: int) -> int:
    """Send until the answer is ``expected`` (workers see partner changes within a second)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        answer = send()
        if answer.status_code == expected or time.monotonic() > deadline:
            return int(answer.status_code)
        time.sleep(0.05)


class TestPartnersConfigure:
    """An existing partner's channels and trust change without new credentials."""

    def test_trust_and_channels_change_on_the_running_api(
        self, app, client, partner, till, member, card_no, member_id, session
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

    def test_each_change_is_audited_and_no_change_is_not(self, app, client, till, admin_token):
        assert cli(app, "partners", "configure", till.app_key, "--trusted").exit_code == 0
        assert cli(app, "partners", "configure", till.app_key, "--trusted").exit_code == 0

        log = client.get(
            "/admin/v1/audit-log?target_type=partner", headers=bearer(admin_token("admin"))
        ).get_json()["items"]
        changes = [entry for entry in log if entry["action"] == "partner.configure"]
        assert len(changes) == 1
        assert changes[0]["before"]["trusted"] is False and changes[0]["after"]["trusted"] is True

    @pytest.mark.parametrize(
        ("ref", "args", "code"),
        [
            ("hk_nobody", ["--trusted"], "not_found"),
            (None, ["--channels", "POS"], "validation_error"),
            (None, ["--channels", "pos,*"], "validation_error"),
            (None, ["--channels", ""], "validation_error"),
        ],
    )
    def test_bad_arguments_change_nothing(self, app, session, till, ref, args, code):
        made = cli(app, "partners", "configure", ref or till.app_key, *args)

        assert made.exit_code != 0
        assert code in made.output
        stored = session.scalars(select(Partner).where(Partner.app_key == till.app_key)).one()
        assert (stored.channels, stored.trusted) == (None, False)
