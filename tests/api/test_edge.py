"""The edge of the service, through HTTP: text that cannot be stored is refused before it
reaches a table (bodies, query strings, paths, stored headers, WeChat's answers), every
string is bounded to its column, body-less POSTs take no fields, the protective headers,
request ids, the access log with the client address, and no full phone number in a log."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.checkins.models import Checkin
from app.members.models import Member, MemberIdentity
from app.orders.models import Order, OrderItem
from tests.support.config import make_config
from tests.support.http import assert_envelope, bearer
from tests.support.signing import open_get, open_post, signed_headers
from tests.support.wechat import login_code, phone_code

ORDERS = "/open/v1/orders"
PHONE = "13812345678"
EMOJI = "\U0001f600"  # four bytes in UTF-8: what utf8mb4 exists for


def order_body(external_id: str = "pos-edge-1", **item_changes: Any) -> dict[str, Any]:
    item = {"sku": "SKU-1", "name": "拿铁", "quantity": 1, "amount_cents": 1000} | item_changes
    return {
        "channel": "pos",
        "external_id": external_id,
        "member": {"phone": PHONE},
        "paid_at": "2026-01-01T10:00:00+08:00",
        "amount_cents": 1000,
        "items": [item],
    }


@pytest.fixture
def token(login) -> str:
    return str(login("o-edge")["token"])


def patch_raw(client, token: str, raw: bytes):
    return client.patch(
        "/mp/v1/me", data=raw, content_type="application/json", headers=bearer(token)
    )


class TestUnstorableText:
    @pytest.mark.parametrize(
        "raw",
        [
            rb'{"nickname": "\ud800"}',
            rb'{"nickname": "ok\udfff"}',
            rb'{"nickname": "\ude00\ud83d"}',  # a pair in the wrong order is two lone halves
            rb'{"city": "nul\u0000"}',
        ],
        ids=["high", "low", "reversed-pair", "nul"],
    )
    def test_in_a_body_value_is_422_naming_the_field_and_changes_nothing(self, client, token, raw):
        error = assert_envelope(patch_raw(client, token, raw), 422, "validation_error")
        assert list(error["details"]["fields"]) == [next(iter(json.loads(raw)))]
        me = client.get("/mp/v1/me", headers=bearer(token)).get_json()
        assert me["nickname"] is None and me["city"] is None

    def test_a_proper_surrogate_pair_is_a_character_and_is_stored(self, client, token):
        answer = patch_raw(client, token, rb'{"nickname": "\ud83d\ude00"}')
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["nickname"] == EMOJI

    def test_in_a_key_is_422_and_the_answer_is_valid_utf8(self, client, sim):
        raw = rb'{"code": "x", "\ud800": 1}'
        answer = client.post("/mp/v1/auth/login", data=raw, content_type="application/json")
        assert_envelope(answer, 422, "validation_error")
        answer.get_data().decode("utf-8")  # strict: the answer names nothing it cannot encode

    def test_deep_in_a_signed_order_is_422_and_no_order_is_stored(self, client, partner, count):
        body = order_body(name="\ud800")
        answer = open_post(client, partner, ORDERS, body)
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"]["fields"] == {"items": {"0": {"name": [error_text(error)]}}}
        assert count(Order) == 0 and count(OrderItem) == 0
        assert count(Member) == 0  # the phone would have created the member

    def test_nul_in_an_external_id_is_422(self, client, partner, count):
        answer = open_post(client, partner, ORDERS, order_body(external_id="pos\u00001"))
        assert_envelope(answer, 422, "validation_error")
        assert count(Order) == 0

    @pytest.mark.parametrize(
        "query",
        ["phone=%FF", "phone=%ED%A0%80", "card_no=%C0%AF", "phone=138%00", "%FF=1"],
        ids=["invalid-byte", "encoded-surrogate", "overlong", "nul", "in-a-name"],
    )
    def test_in_a_query_string_is_422(self, client, admin_token, query):
        headers = bearer(admin_token("analyst"))
        answer = client.get(f"/admin/v1/members?{query}", headers=headers)
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"] == {"field": "query"}

    def test_a_plain_utf8_query_string_still_works(self, client, admin_token):
        headers = bearer(admin_token("analyst"))
        answer = client.get("/admin/v1/members?card_no=%E5%8D%A1", headers=headers)
        assert answer.status_code == 200 and answer.get_json()["items"] == []

    def test_in_a_signed_query_string_is_422(self, client, partner):
        answer = open_get(client, partner, "/open/v1/members/lookup?phone=%ED%A0%80")
        assert_envelope(answer, 422, "validation_error")

    @pytest.mark.parametrize("path", ["/admin/v1/tiers/%FF", "/admin/v1/tiers/a%00b"])
    def test_in_a_path_is_422(self, client, admin_token, path):
        headers = bearer(admin_token("admin"))
        answer = client.patch(path, json={"name": "金卡"}, headers=headers)
        assert_envelope(answer, 422, "validation_error")

    @pytest.mark.parametrize("key", ["caf\xc3\xa9", "\xff\xfe", "a\tb"])
    def test_in_an_idempotency_key_is_422_and_nothing_is_stored(self, client, token, key, count):
        headers = bearer(token) | {"Idempotency-Key": key}
        answer = client.post("/mp/v1/checkins", headers=headers)
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"]["field"] == "Idempotency-Key"
        assert count(Checkin) == 0

    @pytest.mark.parametrize("header", ["X-App-Key", "X-Nonce", "X-Signature", "X-Timestamp"])
    def test_in_a_partner_header_is_401_not_a_crash(self, client, partner, header):
        path = "/open/v1/members/lookup?card_no=1"
        headers = signed_headers(partner, "GET", path) | {header: "\xff\xc3("}
        assert_envelope(client.get(path, headers=headers), 401, "unauthorized")

    def test_in_a_bearer_token_is_401_not_a_crash(self, client):
        answer = client.get("/mp/v1/me", headers={"Authorization": "Bearer \xff\xc3("})
        assert_envelope(answer, 401, "unauthorized")


def error_text(error: dict[str, Any]) -> str:
    """The one message of a nested field error."""
    found = re.search(r"'([^']+)'\]", str(error["details"]["fields"]))
    assert found, error
    return found.group(1)


class TestBodylessPosts:
    def test_a_field_is_422_named_and_nothing_happens(self, client, token, count):
        answer = client.post("/mp/v1/checkins", json={"points": 1000}, headers=bearer(token))
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"]["fields"] == {"points": ["Unknown field."]}
        assert count(Checkin) == 0

    @pytest.mark.parametrize("body", [None, {}])
    def test_no_body_or_an_empty_object_is_accepted(self, client, token, body, count):
        answer = client.post("/mp/v1/checkins", json=body, headers=bearer(token))
        assert answer.status_code == 200, answer.get_json()
        assert count(Checkin) == 1


class TestPhonesFromWeChat:
    def bind(self, client, sim, token, phone: str, country_code: str = "86"):
        import requests

        issued = requests.post(
            sim.base_url + "sim/mp/phone-codes",
            json={"phone": phone, "country_code": country_code},
            timeout=5,
        )
        issued.raise_for_status()
        code = issued.json()["code"]
        return client.post("/mp/v1/auth/phone", json={"code": code}, headers=bearer(token))

    @pytest.mark.parametrize(
        ("phone", "country_code"),
        [
            ("1" * 21, "86"),  # more digits than any phone
            ("12345678901234567890", "1234"),  # a code longer than any country's
            ("١٣٨١٢٣٤٥٦٧٨", "86"),  # digits, but not ASCII ones
            ("1234", "86"),
        ],
        ids=["too-long", "long-country-code", "arabic-indic-digits", "too-short"],
    )
    def test_an_unusable_phone_is_422_and_nothing_is_bound(
        self, client, sim, token, session, phone, country_code
    ):
        answer = self.bind(client, sim, token, phone, country_code)
        error = assert_envelope(answer, 422, "validation_error")
        assert error["details"]["reason"] == "unusable_phone"
        session.expire_all()
        assert session.scalars(select(Member.phone)).all() == [None]

    def test_the_longest_storable_phone_is_bound(self, client, sim, token):
        answer = self.bind(client, sim, token, "9" * 20, "999")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["phone_masked"] == "+99****9999"

    def test_an_overlong_openid_from_wechat_is_503_and_creates_nobody(self, client, sim, count):
        code = login_code(sim, "o" * 129)
        answer = client.post("/mp/v1/auth/login", json={"code": code})
        assert_envelope(answer, 503, "upstream_unavailable")
        assert count(Member) == 0 and count(MemberIdentity) == 0


@pytest.mark.mariadb
class TestColumnBoundsOnMariaDB:
    """utf8mb4 columns hold exactly their length in characters, four-byte ones included;
    one more is 422 before any statement runs."""

    @pytest.mark.parametrize(("field", "limit"), [("nickname", 32), ("city", 64)])
    def test_profile_text_up_to_its_bound_is_stored_and_beyond_is_422(
        self, client, token, session, field, limit
    ):
        too_long = patch_raw(client, token, json.dumps({field: EMOJI * (limit + 1)}).encode())
        assert_envelope(too_long, 422, "validation_error")
        answer = patch_raw(client, token, json.dumps({field: EMOJI * limit}).encode())
        assert answer.status_code == 200, answer.get_json()
        session.expire_all()
        assert getattr(session.scalars(select(Member)).one(), field) == EMOJI * limit

    @pytest.mark.parametrize(
        ("field", "limit"), [("sku", 64), ("name", 128), ("category", 64), ("brand", 64)]
    )
    def test_order_item_text_up_to_its_column_and_beyond_is_422(
        self, client, partner, session, count, field, limit
    ):
        too_long = order_body("pos-long", **{field: EMOJI * (limit + 1)})
        assert_envelope(open_post(client, partner, ORDERS, too_long), 422, "validation_error")
        assert count(Order) == 0
        answer = open_post(
            client, partner, ORDERS, order_body("pos-fits", **{field: EMOJI * limit})
        )
        assert answer.status_code == 201, answer.get_json()
        session.expire_all()
        assert getattr(session.scalars(select(OrderItem)).one(), field) == EMOJI * limit

    def test_an_external_id_of_65_is_422_and_64_four_byte_characters_are_stored(
        self, client, partner, session, count
    ):
        assert_envelope(
            open_post(client, partner, ORDERS, order_body("x" * 65)), 422, "validation_error"
        )
        assert count(Order) == 0
        answer = open_post(client, partner, ORDERS, order_body(EMOJI * 64))
        assert answer.status_code == 201, answer.get_json()
        session.expire_all()
        assert session.scalars(select(Order.external_id)).one() == EMOJI * 64

    def test_surrogates_and_too_long_phones_store_nothing(self, client, sim, token, partner, count):
        assert patch_raw(client, token, rb'{"nickname": "\ud800"}').status_code == 422
        answer = TestPhonesFromWeChat().bind(client, sim, token, "1" * 22, "86")
        assert_envelope(answer, 422, "validation_error")
        assert open_post(client, partner, ORDERS, order_body(name="\udfff")).status_code == 422
        assert count(Order) == 0 and count(Member) == 1


class TestHeaders:
    def test_nosniff_on_every_answer(self, client, token, admin_token, partner):
        answers = [
            client.get("/healthz"),
            client.get("/nowhere"),
            client.post("/mp/v1/auth/login", data=b"[", content_type="application/json"),
            client.get("/mp/v1/me", headers=bearer(token)),
            client.get("/admin/v1/auth/me", headers=bearer(admin_token("admin"))),
            open_get(client, partner, "/open/v1/members/lookup?card_no=000000000000"),
            client.get("/mp/v1/me"),
        ]
        for answer in answers:
            assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.request.path

    def test_no_store_on_authenticated_answers_and_log_ins(
        self, client, sim, token, admin_token, partner
    ):
        answers = [
            client.get("/mp/v1/me", headers=bearer(token)),
            client.get("/mp/v1/card", headers=bearer(token)),
            client.get("/admin/v1/auth/me", headers=bearer(admin_token("admin"))),
            open_get(client, partner, "/open/v1/members/lookup?card_no=000000000000"),
            client.get("/mp/v1/me"),  # refused: still for nobody else to keep
            client.post("/mp/v1/auth/login", json={"code": login_code(sim, "o-edge-2")}),
        ]
        for answer in answers:
            assert answer.headers["Cache-Control"] == "no-store", answer.request.path


class TestRequestIds:
    @pytest.mark.parametrize("good", ["abc", "till-42.A_b", "x" * 64])
    def test_a_safe_id_is_used(self, client, good):
        assert (
            client.get("/healthz", headers={"X-Request-Id": good}).headers["X-Request-Id"] == good
        )

    @pytest.mark.parametrize(
        "bad", ["x" * 65, "a b", "a/b", "id;drop", '"quoted"', "caf\xc3\xa9", "a\\nb", ""]
    )
    def test_anything_else_gets_a_fresh_id(self, client, bad):
        echoed = client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "huiyuan.access"]


class TestAccessLog:
    def test_a_line_carries_method_path_status_duration_and_client(self, client, token, caplog):
        caplog.set_level(logging.INFO, logger="huiyuan.access")
        client.get(
            "/mp/v1/me?x=1",
            headers=bearer(token),
            environ_base={"REMOTE_ADDR": "198.51.100.7"},
        )
        (record,) = access_records(caplog)
        assert (record.method, record.path, record.status) == ("GET", "/mp/v1/me", 200)
        assert isinstance(record.duration_ms, float) and record.duration_ms >= 0
        assert record.client == "198.51.100.7"
        assert record.getMessage().startswith("GET /mp/v1/me 200 ")

    def test_x_forwarded_for_is_ignored_without_trusted_proxies(self, client, caplog):
        caplog.set_level(logging.INFO, logger="huiyuan.access")
        client.get(
            "/healthz",
            headers={"X-Forwarded-For": "203.0.113.9"},
            environ_base={"REMOTE_ADDR": "10.0.0.5"},
        )
        assert [r.client for r in access_records(caplog)] == ["10.0.0.5"]

    @pytest.fixture
    def proxied(self, sim, database_url, engine, session_factory, redis):
        config = make_config(sim, database_url, trusted_proxies=("10.0.0.0/8", "::1"))
        app = create_app(config, engine=engine, session_factory=session_factory, redis=redis)
        return app.test_client()

    @pytest.mark.parametrize(
        ("peer", "forwarded", "client_address"),
        [
            ("10.0.0.5", "203.0.113.9", "203.0.113.9"),  # from the proxy: its word is taken
            ("10.0.0.5", "192.0.2.1, 203.0.113.9", "203.0.113.9"),  # the hop the proxy saw
            ("::1", "203.0.113.9", "203.0.113.9"),
            ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # anyone else: ignored
        ],
    )
    def test_x_forwarded_for_is_taken_only_from_a_trusted_proxy(
        self, proxied, caplog, peer, forwarded, client_address
    ):
        caplog.set_level(logging.INFO, logger="huiyuan.access")
        proxied.get(
            "/healthz",
            headers={"X-Forwarded-For": forwarded},
            environ_base={"REMOTE_ADDR": peer},
        )
        assert [r.client for r in access_records(caplog)] == [client_address]


class TestNoPhoneInLogs:
    @pytest.fixture
    def written(self, app):
        """What the service's own log handler writes (the stream swapped for the test)."""
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        stream = io.StringIO()
        previous = handler.setStream(stream)
        yield stream
        handler.setStream(previous)

    def test_binding_looking_up_and_failing_with_a_phone_logs_it_masked(
        self, client, sim, token, admin_token, partner, written
    ):
        code = phone_code(sim, PHONE)
        bound = client.post("/mp/v1/auth/phone", json={"code": code}, headers=bearer(token))
        assert bound.status_code == 200
        headers = bearer(admin_token("analyst"))
        assert client.get(f"/admin/v1/members?phone={PHONE}", headers=headers).status_code == 200
        open_get(client, partner, f"/open/v1/members/lookup?phone={PHONE}")
        logging.getLogger("huiyuan.test").error("lookup of %s failed", PHONE)
        try:
            raise ValueError(f"Data too long for column 'phone': '+44{PHONE}'")
        except ValueError:
            logging.getLogger("huiyuan.test").exception("unhandled")
        lines = written.getvalue()
        assert "GET /admin/v1/members 200" in lines  # the access log was written here
        assert "lookup of 138****5678 failed" in lines
        assert "'+44*********" in lines
        assert PHONE not in lines
