"""GET/PATCH /mp/v1/me and GET /mp/v1/card over HTTP, held to the contract: the answers'
fields, the validation only the HTTP layer does, and that the token alone decides whose
data is read or changed. What a profile change and the card do is tested against the
services: tests/services/test_profile_and_card.py, and test_tier_ladder.py and
test_points_reading.py for the card's tier, growth and points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import Config
from tests.factories.tiers import TierFactory
from tests.support.config import make_config
from tests.support.http import assert_envelope, bearer
from tests.support.signing import open_post

PROFILE_FIELDS = {
    "id",
    "card_no",
    "nickname",
    "avatar_url",
    "gender",
    "birthday",
    "city",
    "phone_masked",
    "registered_at",
}
CARD_FIELDS = {
    "card_no",
    "qr_payload",
    "qr_expires_at",
    "tier",
    "growth",
    "points",
    "paid_membership",
    "stored_value_cents",
}
NEVER_ANSWERED = {"phone", "unionid", "openid", "session_key", "merged_into_id", "status"}
# 01:00 on 2 March in Shanghai, still 1 March in UTC.
T0 = datetime(2026, 3, 1, 17, 0, 0, tzinfo=UTC)
SHANGHAI = timedelta(hours=8)
# Not the default (60): the card's qr_expires_at shows the configuration is what counts.
QR_TTL_SECONDS = 90


@pytest.fixture
def config(sim, database_url) -> Config:
    return make_config(sim, database_url, card_qr_ttl_seconds=QR_TTL_SECONDS)


@pytest.fixture
def frozen(time_machine):
    """Time stands at T0 (tokens and QR payloads are stamped with it)."""
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def member(frozen, login):
    return login("o-me")


@pytest.fixture
def headers(member):
    return bearer(member["token"])


def patch(client, headers, body):
    return client.patch("/mp/v1/me", json=body, headers=headers)


class TestProfile:
    def test_get_answers_the_profile_fields(self, client, member):
        answer = client.get("/mp/v1/me", headers=bearer(member["token"]))
        assert answer.status_code == 200
        body = answer.get_json()
        assert set(body) >= PROFILE_FIELDS
        assert not NEVER_ANSWERED & set(body)
        assert body["id"] == member["member"]["id"]
        assert body["card_no"] == member["member"]["card_no"]
        assert body["gender"] == "unknown"
        for empty in ("nickname", "avatar_url", "birthday", "city", "phone_masked"):
            assert body[empty] is None, empty
        registered = datetime.fromisoformat(body["registered_at"])
        assert registered.utcoffset() == SHANGHAI
        assert registered == T0

    def test_patch_changes_each_field(self, client, headers):
        change = {
            "nickname": "  小林  ",
            "avatar_url": "https://cdn.example.com/a.png",
            "gender": "female",
            "city": "上海",
            "birthday": "1992-07-15",
        }
        answer = patch(client, headers, change)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert set(body) >= PROFILE_FIELDS
        assert not NEVER_ANSWERED & set(body)
        assert body["nickname"] == "小林"  # trimmed
        assert body["avatar_url"] == change["avatar_url"]
        assert body["gender"] == "female"
        assert body["city"] == "上海"
        assert body["birthday"] == "1992-07-15"
        assert client.get("/mp/v1/me", headers=headers).get_json() == body

    def test_changing_a_set_birthday_is_409_conflict_naming_the_field(self, client, headers):
        assert patch(client, headers, {"birthday": "1990-01-02"}).status_code == 200

        answer = patch(client, headers, {"birthday": "1991-01-02"})

        error = assert_envelope(answer, 409, "conflict")
        assert error["details"]["field"] == "birthday"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"gender": "other"}, "gender"),
            ({"gender": "Female"}, "gender"),
            ({"nickname": "a\u0007b"}, "nickname"),
            ({"nickname": "line\nbreak"}, "nickname"),
            ({"nickname": "nul\u0000"}, "nickname"),
            ({"city": "\u001b[31m"}, "city"),
            ({"nickname": "   "}, "nickname"),
            ({"nickname": "x" * 33}, "nickname"),
            ({"nickname": None}, "nickname"),
            ({"birthday": "1899-12-31"}, "birthday"),
            ({"birthday": "1990-02-30"}, "birthday"),
            ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
            ({"avatar_url": "not a url"}, "avatar_url"),
        ],
    )
    def test_bad_values_are_422_naming_the_field(self, client, headers, body, field):
        error = assert_envelope(patch(client, headers, body), 422, "validation_error")
        assert list(error["details"]["fields"]) == [field]

    def test_a_future_birthday_is_422_by_the_shanghai_calendar(self, client, headers):
        # T0 is 2 March in Shanghai, 1 March in UTC.
        error = assert_envelope(
            patch(client, headers, {"birthday": "2026-03-03"}), 422, "validation_error"
        )
        assert "birthday" in error["details"]["fields"]
        assert patch(client, headers, {"birthday": "2026-03-02"}).status_code == 200

    def test_a_refused_patch_changes_nothing(self, client, headers):
        before = client.get("/mp/v1/me", headers=headers).get_json()
        answer = patch(client, headers, {"nickname": "Fine", "gender": "robot"})
        assert answer.status_code == 422
        assert client.get("/mp/v1/me", headers=headers).get_json() == before


class TestCard:
    def test_answers_the_card_with_its_tier_growth_points_and_a_fresh_qr_payload(
        self, client, member, headers, partner, session
    ):
        TierFactory(code="silver", name="银卡", rank=1, threshold=0, benefits={})
        TierFactory(code="gold", name="金卡", rank=2, threshold=100_000)
        session.commit()
        card_no = member["member"]["card_no"]
        bought = open_post(
            client,
            partner,
            "/open/v1/orders",
            {
                "channel": "pos",
                "external_id": "pos-card-1",
                "member": {"card_no": card_no},
                "paid_at": "2026-03-02T00:30:00+08:00",
                "amount_cents": 30_000,
                "items": [{"sku": "S1", "name": "Tea", "quantity": 1, "amount_cents": 30_000}],
            },
        )
        assert bought.status_code == 201, bought.get_json()

        answer = client.get("/mp/v1/card", headers=headers)

        assert answer.status_code == 200
        card = answer.get_json()
        assert set(card) >= CARD_FIELDS
        assert card["card_no"] == card_no
        assert isinstance(card["qr_payload"], str)
        assert card_no in card["qr_payload"]
        expires = datetime.fromisoformat(card["qr_expires_at"])
        assert expires.utcoffset() == SHANGHAI
        assert expires == T0 + timedelta(seconds=QR_TTL_SECONDS)
        assert card["tier"] == {"code": "silver", "name": "银卡", "benefits": {}}
        assert card["growth"] == {
            "metric": "spend_cents",
            "value": 30_000,
            "next_tier": {"code": "gold", "name": "金卡"},
            "needed": 70_000,
        }
        assert card["points"] == {
            "balance": 300,
            "expiring": [{"points": 300, "expires_at": "2028-01-01T00:00:00+08:00"}],
        }
        assert card["paid_membership"] is None
        assert card["stored_value_cents"] == 0

    def test_the_card_needs_a_token(self, client):
        assert_envelope(client.get("/mp/v1/card"), 401, "unauthorized")


class TestOnlyTheTokenDecidesWhose:
    @pytest.fixture
    def pair(self, login, client):
        alice, bob = login("o-idor-alice"), login("o-idor-bob")
        patch(client, bearer(bob["token"]), {"nickname": "Bob", "city": "深圳"})
        return alice, bob

    @pytest.mark.parametrize(
        "query", ["id={bob}", "member_id={bob}", "card_no={card}", "m={bob}&id={bob}"]
    )
    @pytest.mark.parametrize("path", ["/mp/v1/me", "/mp/v1/card"])
    def test_query_arguments_do_not_pick_the_member(self, client, pair, path, query):
        alice, bob = pair
        url = f"{path}?{query.format(bob=bob['member']['id'], card=bob['member']['card_no'])}"
        answer = client.get(url, headers=bearer(alice["token"]))
        if answer.status_code == 200:
            assert answer.get_json()["card_no"] == alice["member"]["card_no"]
        else:
            assert_envelope(answer, 422, "validation_error")
        assert bob["member"]["card_no"] not in answer.get_data(as_text=True)

    def test_headers_do_not_pick_the_member(self, client, pair):
        alice, bob = pair
        headers = bearer(alice["token"]) | {
            "X-Member-Id": str(bob["member"]["id"]),
            "X-Forwarded-User": str(bob["member"]["id"]),
        }
        body = client.get("/mp/v1/me", headers=headers).get_json()
        assert body["id"] == alice["member"]["id"]

    def test_a_body_cannot_name_another_member(self, client, pair):
        alice, bob = pair
        for body in ({"id": bob["member"]["id"], "nickname": "pwned"}, {"member_id": 1}):
            answer = patch(client, bearer(alice["token"]), body)
            assert_envelope(answer, 422, "validation_error")
        bob_now = client.get("/mp/v1/me", headers=bearer(bob["token"])).get_json()
        assert bob_now["nickname"] == "Bob"

    def test_a_patch_changes_only_the_callers_profile(self, client, pair):
        alice, bob = pair
        patch(client, bearer(alice["token"]), {"nickname": "Alice", "city": "上海"})
        bob_now = client.get("/mp/v1/me", headers=bearer(bob["token"])).get_json()
        assert (bob_now["nickname"], bob_now["city"]) == ("Bob", "深圳")
        alice_now = client.get("/mp/v1/me", headers=bearer(alice["token"])).get_json()
        assert (alice_now["nickname"], alice_now["city"]) == ("Alice", "上海")

    def test_each_token_reads_its_own_card(self, client, pair):
        alice, bob = pair
        for who in (alice, bob):
            card = client.get("/mp/v1/card", headers=bearer(who["token"])).get_json()
            assert card["card_no"] == who["member"]["card_no"]
