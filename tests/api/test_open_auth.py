"""The open API's HMAC signature, through GET /open/v1/members/lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from app.partners.nonces import KEY_PREFIX
from tests.support.http import assert_envelope, bearer
from tests.support.signing import PartnerKeys, open_get, signed_headers

LOOKUP = "/open/v1/members/lookup"
T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def member(frozen, login, bind_phone):
    member = login("o-till")
    assert bind_phone(member["token"], "13812345678").status_code == 200
    return member


@pytest.fixture
def url(member):
    return f"{LOOKUP}?card_no={member['member']['card_no']}"


def now_ts() -> int:
    return int(T0.timestamp())


def flip_last(text: str) -> str:
    return text[:-1] + ("1" if text[-1] == "0" else "0")


def nonces_of(redis, keys: PartnerKeys) -> dict[str, float]:
    return dict(redis.zrange(KEY_PREFIX + keys.app_key, 0, -1, withscores=True))


class TestSignature:
    def test_a_correct_signature_is_200_with_member_tier_and_points(
        self, client, partner, member, url
    ):
        answer = open_get(client, partner, url)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert {"member", "tier", "points_balance"} <= set(body)
        assert body["member"]["id"] == member["member"]["id"]
        assert body["member"]["card_no"] == member["member"]["card_no"]
        assert body["member"]["phone_masked"] == "138****5678"
        assert body["tier"] is None
        assert body["points_balance"] == 0

    def test_a_bad_signature_is_401_and_does_not_burn_the_nonce(self, client, partner, url, redis):
        headers = signed_headers(partner, "GET", url, nonce="n-bad-sig")
        headers["X-Signature"] = "0" * 64
        error = assert_envelope(client.get(url, headers=headers), 401, "unauthorized")
        assert error["details"]["reason"] == "bad_signature"
        assert "n-bad-sig" not in nonces_of(redis, partner)
        assert open_get(client, partner, url, nonce="n-bad-sig").status_code == 200

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda h: h | {"X-Signature": flip_last(h["X-Signature"])},
            lambda h: h | {"X-Nonce": h["X-Nonce"] + "x"},
            lambda h: h | {"X-Timestamp": str(int(h["X-Timestamp"]) - 1)},
        ],
        ids=["signature", "nonce", "timestamp"],
    )
    def test_any_signed_header_changed_is_401(self, client, partner, url, tamper):
        answer = client.get(url, headers=tamper(signed_headers(partner, "GET", url)))
        assert assert_envelope(answer, 401, "unauthorized")["details"]["reason"] == "bad_signature"

    def test_a_signature_for_another_method_is_401(self, client, partner, url):
        headers = signed_headers(partner, "POST", url)
        assert_envelope(client.get(url, headers=headers), 401, "unauthorized")

    def test_a_signature_made_with_another_secret_is_401(self, client, partner, url):
        other = PartnerKeys(partner.app_key, partner.app_secret + "x")
        assert_envelope(open_get(client, other, url), 401, "unauthorized")

    def test_an_uppercase_signature_is_the_same_signature(self, client, partner, url):
        headers = signed_headers(partner, "GET", url)
        headers["X-Signature"] = headers["X-Signature"].upper()
        assert client.get(url, headers=headers).status_code == 200

    @pytest.mark.parametrize("skew", [-301, 301, -10_000])
    def test_a_timestamp_outside_300_seconds_is_401(self, client, partner, url, skew, redis):
        answer = open_get(client, partner, url, timestamp=now_ts() + skew, nonce="n-stale")
        error = assert_envelope(answer, 401, "unauthorized")
        assert error["details"]["reason"] == "stale_timestamp"
        assert "n-stale" not in nonces_of(redis, partner)

    @pytest.mark.parametrize("skew", [-300, 300])
    def test_a_timestamp_300_seconds_off_is_still_accepted(self, client, partner, url, skew):
        assert open_get(client, partner, url, timestamp=now_ts() + skew).status_code == 200

    @pytest.mark.parametrize(
        "timestamp", ["", "abc", "-5", "1.5", "1e9", "\u00b2", "\u0661\u0662", " 1"]
    )
    def test_a_timestamp_that_is_not_unix_seconds_is_401(self, client, partner, url, timestamp):
        headers = signed_headers(partner, "GET", url)
        headers["X-Timestamp"] = timestamp
        assert_envelope(client.get(url, headers=headers), 401, "unauthorized")

    def test_a_replayed_nonce_is_401_and_changes_nothing(self, client, partner, url, redis):
        headers = signed_headers(partner, "GET", url, nonce="n-once")
        first = client.get(url, headers=headers)
        assert first.status_code == 200
        recorded = nonces_of(redis, partner)
        assert recorded == {"n-once": float(now_ts())}
        replay = client.get(url, headers=headers)
        error = assert_envelope(replay, 401, "unauthorized")
        assert error["details"]["reason"] == "replayed_nonce"
        assert nonces_of(redis, partner) == recorded
        # Re-signed with a fresh timestamp, the nonce is still spent.
        later = open_get(client, partner, url, timestamp=now_ts() - 5, nonce="n-once")
        assert_envelope(later, 401, "unauthorized")

    def test_nonces_are_per_partner(self, client, partner, deps, url):
        from app.admins.operations import CLI
        from app.partners.services import create_partner

        made = create_partner(
            uow=deps.uow(), actor=CLI, name="ERP", secret_key=deps.config.secret_key
        )
        other = PartnerKeys(made.app_key, made.app_secret)
        assert open_get(client, partner, url, nonce="n-shared").status_code == 200
        assert open_get(client, other, url, nonce="n-shared").status_code == 200

    def test_an_overlong_nonce_is_401(self, client, partner, url):
        answer = open_get(client, partner, url, nonce="n" * 65)
        assert_envelope(answer, 401, "unauthorized")
        assert open_get(client, partner, url, nonce="n" * 64).status_code == 200

    def test_an_unknown_app_key_is_401(self, client, partner, url):
        stranger = PartnerKeys("hk_" + "0" * 24, partner.app_secret)
        error = assert_envelope(open_get(client, stranger, url), 401, "unauthorized")
        assert error["details"]["reason"] == "unknown_app_key"

    @pytest.mark.parametrize("missing", ["X-App-Key", "X-Timestamp", "X-Nonce", "X-Signature"])
    def test_each_header_is_required(self, client, partner, url, missing):
        headers = signed_headers(partner, "GET", url)
        del headers[missing]
        assert_envelope(client.get(url, headers=headers), 401, "unauthorized")

    def test_no_headers_at_all_is_401(self, client, url):
        assert_envelope(client.get(url), 401, "unauthorized")

    def test_a_member_token_is_no_partner_credential(self, client, member, url):
        assert_envelope(client.get(url, headers=bearer(member["token"])), 401, "unauthorized")


class TestPathAsSent:
    def test_the_query_string_is_signed(self, client, partner, url):
        headers = signed_headers(partner, "GET", LOOKUP)  # path only
        assert_envelope(client.get(url, headers=headers), 401, "unauthorized")

    def test_the_query_is_signed_as_sent_not_as_decoded(self, client, partner, member):
        card_no = member["member"]["card_no"]
        encoded = f"{LOOKUP}?card_no=%{ord(card_no[0]):02X}{card_no[1:]}"  # %31 for "1"...
        decoded = f"{LOOKUP}?card_no={card_no}"
        answer = open_get(client, partner, encoded)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["member"]["id"] == member["member"]["id"]
        headers = signed_headers(partner, "GET", decoded)
        assert_envelope(client.get(encoded, headers=headers), 401, "unauthorized")

    def test_a_query_signed_with_another_value_is_401(self, client, partner, member, login):
        other = login("o-till-other")["member"]["card_no"]
        headers = signed_headers(partner, "GET", f"{LOOKUP}?card_no={other}")
        url = f"{LOOKUP}?card_no={member['member']['card_no']}"
        assert_envelope(client.get(url, headers=headers), 401, "unauthorized")

    def test_an_international_phone_is_looked_up_percent_encoded(self, client, partner, login, sim):
        member = login("o-hk")
        answer = requests.post(  # the phone button, for a Hong Kong number
            sim.base_url + "sim/mp/phone-codes",
            json={"phone": "91234567", "country_code": "852"},
            timeout=5,
        )
        code = answer.json()["code"]
        bound = client.post(
            "/mp/v1/auth/phone", json={"code": code}, headers=bearer(member["token"])
        )
        assert bound.status_code == 200
        found = open_get(client, partner, f"{LOOKUP}?phone=%2B85291234567")
        assert found.status_code == 200, found.get_json()
        assert found.get_json()["member"]["id"] == member["member"]["id"]


class TestLookup:
    def test_by_phone(self, client, partner, member):
        answer = open_get(client, partner, f"{LOOKUP}?phone=13812345678")
        assert answer.status_code == 200
        assert answer.get_json()["member"]["id"] == member["member"]["id"]

    @pytest.mark.parametrize("query", ["card_no=100000000000", "phone=13000000000"])
    def test_unknown_is_404(self, client, partner, member, query):
        assert_envelope(open_get(client, partner, f"{LOOKUP}?{query}"), 404, "not_found")

    @pytest.mark.parametrize(
        "query", ["", "?card_no=1&phone=2", "?card_no=", "?name=x", "?card_no=" + "1" * 33]
    )
    def test_exactly_one_known_key_is_needed(self, client, partner, query):
        assert_envelope(open_get(client, partner, LOOKUP + query), 422, "validation_error")

    def test_a_merged_members_card_finds_the_survivor(self, client, partner, login, bind_phone):
        holder, loser = login("o-till-holder"), login("o-till-loser")
        bind_phone(holder["token"], "13911112222")
        bind_phone(loser["token"], "13911112222")
        answer = open_get(client, partner, f"{LOOKUP}?card_no={loser['member']['card_no']}")
        assert answer.status_code == 200
        assert answer.get_json()["member"]["id"] == holder["member"]["id"]


class TestCardQr:
    @pytest.fixture
    def card(self, client, member):
        return client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()

    def qr_url(self, payload: str) -> str:
        return f"{LOOKUP}?qr_payload={payload}"

    def test_resolves_until_it_expires_then_409(self, client, partner, member, card, frozen):
        expires = datetime.fromisoformat(card["qr_expires_at"])
        assert expires > T0
        answer = open_get(client, partner, self.qr_url(card["qr_payload"]))
        assert answer.status_code == 200
        assert answer.get_json()["member"]["id"] == member["member"]["id"]
        frozen.move_to(expires - timedelta(seconds=1), tick=False)
        assert open_get(client, partner, self.qr_url(card["qr_payload"])).status_code == 200
        frozen.move_to(expires, tick=False)
        error = assert_envelope(
            open_get(client, partner, self.qr_url(card["qr_payload"])), 409, "conflict"
        )
        assert error["details"]["reason"] == "qr_expired"

    def test_a_refreshed_card_resolves_again(self, client, partner, member, card, frozen):
        frozen.move_to(T0 + timedelta(minutes=10), tick=False)
        assert open_get(client, partner, self.qr_url(card["qr_payload"])).status_code == 409
        fresh = client.get("/mp/v1/card", headers=bearer(member["token"])).get_json()
        assert open_get(client, partner, self.qr_url(fresh["qr_payload"])).status_code == 200

    def test_a_tampered_payload_is_422(self, client, partner, card, login):
        prefix, card_no, expires, signature = card["qr_payload"].split(".")
        other_card = login("o-qr-other")["member"]["card_no"]
        for payload in (
            f"{prefix}.{other_card}.{expires}.{signature}",  # someone else's card
            f"{prefix}.{card_no}.{int(expires) + 3600}.{signature}",  # a longer life
            f"{prefix}.{card_no}.{expires}.{flip_last(signature)}",
            f"{prefix}.{card_no}.{expires}",
            "not-a-payload",
        ):
            answer = open_get(client, partner, self.qr_url(payload))
            assert_envelope(answer, 422, "validation_error")
