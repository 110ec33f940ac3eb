"""POST /mp/v1/auth/login and /mp/v1/auth/phone, and the bearer token they hand out, held
to the contract: the answers, the token's checks, and the status each error maps to. Who a
login or a phone finds, creates or merges is tested against the services:
tests/services/test_login.py and test_phone_merge.py."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from app.members import rules
from app.members.models import MemberIdentity
from tests.support import settings
from tests.support.http import assert_envelope, bearer
from tests.support.wechat import login_code, phone_code

LOGIN = "/mp/v1/auth/login"
SEVEN_DAYS = 7 * 24 * 3600
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def token_payload(token: str) -> dict:
    """What anyone holding the token can read: itsdangerous signs, it does not encrypt."""
    payload = token.split(".", maxsplit=1)[0]
    assert not token.startswith("."), "compressed payloads are not expected"
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def me(client, token):
    return client.get("/mp/v1/me", headers=bearer(token))


class TestLogin:
    def test_a_first_login_answers_a_token_and_the_new_member(self, client, sim, session):
        answer = client.post(LOGIN, json={"code": login_code(sim, "o-first")})

        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert set(body) == {"token", "expires_in", "member", "is_new"}
        assert isinstance(body["token"], str) and body["token"]
        assert body["expires_in"] == SEVEN_DAYS
        assert body["is_new"] is True
        member = body["member"]
        assert isinstance(member["id"], int)
        assert re.fullmatch(r"\d{12}", member["card_no"])
        assert rules.is_valid_card_no(member["card_no"])
        assert me(client, body["token"]).get_json() == member  # shaped as GET /mp/v1/me
        identity = session.scalars(
            select(MemberIdentity).where(MemberIdentity.external_id == "o-first")
        ).one()
        assert identity.session_key  # kept on the server...
        assert identity.session_key not in answer.get_data(as_text=True)  # ...and only there
        assert "session_key" not in answer.get_data(as_text=True)

    def test_a_code_wechat_refuses_is_422_naming_the_code(self, client, sim):
        code = login_code(sim, "o-reuse")
        assert client.post(LOGIN, json={"code": code}).status_code == 200

        error = assert_envelope(client.post(LOGIN, json={"code": code}), 422, "validation_error")

        assert error["details"]["field"] == "code"

    def test_wechat_failing_is_an_enveloped_503_not_a_crash(self, client, sim):
        code = login_code(sim, "o-wechat-down")
        sim.state.add_fault("/sns/jscode2session", errcode=-1, times=1)

        answer = client.post(LOGIN, json={"code": code})

        assert_envelope(answer, 503, "upstream_unavailable")


class TestToken:
    def test_it_names_the_member_id_and_nothing_else(self, login, bind_phone):
        first = login("o-private", unionid="u-private")
        token = first["token"]
        assert bind_phone(token, "13912345678").status_code == 200
        payload = token_payload(token)
        assert set(payload) == {"m", "s"}  # the member id and the session id
        assert payload["m"] == first["member"]["id"]
        assert isinstance(payload["s"], int)
        for personal in ("o-private", "u-private", "13912345678", first["member"]["card_no"]):
            assert personal not in token
            assert personal not in json.dumps(token_payload(token))

    def test_a_missing_token_is_401(self, client):
        error = assert_envelope(client.get("/mp/v1/me"), 401, "unauthorized")
        assert error["message"]

    @pytest.mark.parametrize(
        "header",
        ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer-token", "Bearer not.a.token"],
    )
    def test_a_malformed_header_is_401(self, client, header):
        assert_envelope(
            client.get("/mp/v1/me", headers={"Authorization": header}), 401, "unauthorized"
        )

    def test_a_token_signed_with_another_key_is_401(self, client, login):
        member_id = login("o-forge")["member"]["id"]
        forged = URLSafeTimedSerializer("another-secret-key", salt="huiyuan.mp-token.v1").dumps(
            {"m": member_id}
        )
        assert_envelope(me(client, forged), 401, "unauthorized")

    def test_a_token_with_a_swapped_payload_is_401(self, client, login):
        alice, bob = login("o-alice-t"), login("o-bob-t")
        payload = base64.urlsafe_b64encode(
            json.dumps({"m": bob["member"]["id"]}, separators=(",", ":")).encode()
        )
        _, stamp, signature = alice["token"].split(".")
        forged = f"{payload.decode().rstrip('=')}.{stamp}.{signature}"
        assert_envelope(me(client, forged), 401, "unauthorized")

    def test_an_admin_token_is_no_member_token(self, client, login, admin_token):
        login("o-admin-salt")
        token = admin_token("admin")
        assert_envelope(me(client, token), 401, "unauthorized")

    @pytest.mark.parametrize(
        "payload", [{"m": "1"}, {"a": 1}, [1], {"m": 10**12}, {"m": 10**12, "s": 1}]
    )
    def test_a_well_signed_token_naming_no_member_is_401(self, client, payload):
        token = URLSafeTimedSerializer(settings.SECRET_KEY, salt="huiyuan.mp-token.v1").dumps(
            payload
        )
        assert_envelope(me(client, token), 401, "unauthorized")

    def test_it_expires_after_seven_days(self, client, login, time_machine):
        time_machine.move_to(T0, tick=False)
        token = login("o-expiry")["token"]
        time_machine.move_to(T0 + timedelta(seconds=SEVEN_DAYS - 1), tick=False)
        assert me(client, token).status_code == 200
        time_machine.move_to(T0 + timedelta(seconds=SEVEN_DAYS + 1), tick=False)
        assert_envelope(me(client, token), 401, "unauthorized")
        assert_envelope(client.get("/mp/v1/card", headers=bearer(token)), 401, "unauthorized")


class TestPhone:
    def test_binding_answers_the_profile_with_the_masked_phone(self, client, login, bind_phone):
        token = login("o-phone")["token"]
        answer = bind_phone(token, "13800138000")
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert body["phone_masked"] == "138****8000"
        assert "13800138000" not in answer.get_data(as_text=True)
        assert body == me(client, token).get_json()

    def test_the_losers_token_then_acts_for_the_survivor(self, client, login, bind_phone):
        """A merge ends no session: the loser's token is still accepted, for the survivor."""
        holder = login("o-holder-2")
        loser = login("o-loser-2")
        assert bind_phone(holder["token"], "13600136000").status_code == 200

        merged = bind_phone(loser["token"], "13600136000")

        assert merged.status_code == 200, merged.get_json()
        assert merged.get_json()["id"] == holder["member"]["id"]  # the survivor answers
        again = me(client, loser["token"])
        assert again.status_code == 200
        assert again.get_json() == me(client, holder["token"]).get_json()

    def test_binding_needs_a_token(self, client, sim):
        answer = client.post("/mp/v1/auth/phone", json={"code": phone_code(sim, "13300133000")})
        assert_envelope(answer, 401, "unauthorized")
