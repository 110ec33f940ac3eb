"""Idempotency-Key over HTTP, with PATCH /mp/v1/me and POST /mp/v1/auth/phone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.idempotency.models import IdempotencyRecord
from app.members.models import MemberMerge
from tests.support.http import assert_envelope, bearer, log_in
from tests.support.wechat import phone_code

KEY = "Idempotency-Key"


def patch_me(client, token, body, key=None):
    headers = bearer(token) | ({KEY: key} if key is not None else {})
    return client.patch("/mp/v1/me", json=body, headers=headers)


def post_phone(client, token, code, key=None):
    headers = bearer(token) | ({KEY: key} if key is not None else {})
    return client.post("/mp/v1/auth/phone", json={"code": code}, headers=headers)


def nickname(client, token):
    return client.get("/mp/v1/me", headers=bearer(token)).get_json()["nickname"]


def assert_replay_of(first, again):
    assert again.status_code == first.status_code
    assert again.get_data() == first.get_data()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.mimetype == "application/json"


@pytest.fixture
def alice(login):
    return login("o-idem-alice")


@pytest.fixture
def bob(login):
    return login("o-idem-bob")


class TestReplay:
    def test_patch_is_replayed_and_applied_once(self, client, alice):
        token = alice["token"]
        first = patch_me(client, token, {"nickname": "First"}, key="k-patch")
        assert first.status_code == 200
        # Someone changes the nickname in between: a replay must not apply it again.
        assert patch_me(client, token, {"nickname": "Between"}).status_code == 200
        again = patch_me(client, token, {"nickname": "First"}, key="k-patch")
        assert_replay_of(first, again)
        assert again.get_json()["nickname"] == "First"
        assert nickname(client, token) == "Between"

    def test_phone_binding_is_replayed_without_asking_wechat_again(self, client, sim, alice):
        code = phone_code(sim, "13812340000")
        first = post_phone(client, alice["token"], code, key="k-phone")
        assert first.status_code == 200
        # Run again, the code (single use at WeChat) would now be refused with a 422.
        again = post_phone(client, alice["token"], code, key="k-phone")
        assert_replay_of(first, again)
        assert again.get_json()["phone_masked"] == "138****0000"

    def test_a_merge_is_replayed_and_happens_once(self, client, sim, login, bind_phone, count):
        holder, newcomer = login("o-idem-holder"), login("o-idem-newcomer")
        bind_phone(holder["token"], "13812341111")
        code = phone_code(sim, "13812341111")
        first = post_phone(client, newcomer["token"], code, key="k-merge")
        assert first.status_code == 200
        assert first.get_json()["id"] == holder["member"]["id"]
        again = post_phone(client, newcomer["token"], code, key="k-merge")
        assert_replay_of(first, again)
        assert count(MemberMerge) == 1

    def test_a_domain_error_is_replayed(self, client, alice):
        token = alice["token"]
        assert patch_me(client, token, {"birthday": "1990-01-02"}).status_code == 200
        first = patch_me(client, token, {"birthday": "1991-03-04"}, key="k-409")
        assert_envelope(first, 409, "conflict")
        again = patch_me(client, token, {"birthday": "1991-03-04"}, key="k-409")
        assert_replay_of(first, again)

    def test_a_refused_body_is_replayed(self, client, alice):
        first = patch_me(client, alice["token"], {"gender": "robot"}, key="k-422")
        assert_envelope(first, 422, "validation_error")
        assert_replay_of(first, patch_me(client, alice["token"], {"gender": "robot"}, key="k-422"))

    def test_without_a_key_nothing_is_stored_or_replayed(self, client, alice, count):
        records = count(IdempotencyRecord)
        first = patch_me(client, alice["token"], {"city": "北京"})
        again = patch_me(client, alice["token"], {"city": "北京"})
        assert "Idempotent-Replayed" not in again.headers
        assert first.status_code == again.status_code == 200
        assert count(IdempotencyRecord) == records


class TestMismatch:
    def test_the_same_key_with_another_body_is_409(self, client, alice):
        assert patch_me(client, alice["token"], {"nickname": "One"}, key="k-mm").status_code == 200
        answer = patch_me(client, alice["token"], {"nickname": "Two"}, key="k-mm")
        assert_envelope(answer, 409, "idempotency_mismatch")
        assert nickname(client, alice["token"]) == "One"

    def test_the_same_key_on_another_endpoint_is_409(self, client, sim, alice):
        assert patch_me(client, alice["token"], {"nickname": "One"}, key="k-x").status_code == 200
        code = phone_code(sim, "13812342222")
        answer = post_phone(client, alice["token"], code, key="k-x")
        assert_envelope(answer, 409, "idempotency_mismatch")
        me = client.get("/mp/v1/me", headers=bearer(alice["token"])).get_json()
        assert me["phone_masked"] is None


class TestKeys:
    @pytest.mark.parametrize(
        "key", ["k" * 65, "", "clé-unicode", "tab\there"], ids=["65", "empty", "unicode", "tab"]
    )
    def test_an_unusable_key_is_422_and_runs_nothing(self, client, alice, key, count):
        records = count(IdempotencyRecord)
        answer = client.patch(
            "/mp/v1/me",
            json={"nickname": "Nope"},
            headers=bearer(alice["token"]) | {KEY: key.encode("utf-8").decode("latin-1")},
        )
        assert_envelope(answer, 422, "validation_error")
        assert nickname(client, alice["token"]) is None
        assert count(IdempotencyRecord) == records

    def test_a_64_character_key_is_fine(self, client, alice):
        first = patch_me(client, alice["token"], {"nickname": "Long"}, key="k" * 64)
        assert first.status_code == 200
        assert_replay_of(
            first, patch_me(client, alice["token"], {"nickname": "Long"}, key="k" * 64)
        )

    def test_keys_are_per_caller(self, client, alice, bob):
        first = patch_me(client, alice["token"], {"nickname": "Alice"}, key="k-shared")
        theirs = patch_me(client, bob["token"], {"nickname": "Bob"}, key="k-shared")
        assert theirs.status_code == 200
        assert "Idempotent-Replayed" not in theirs.headers
        assert theirs.get_json()["id"] == bob["member"]["id"]
        assert theirs.get_json()["nickname"] == "Bob"
        assert first.get_json()["id"] == alice["member"]["id"]
        # The same key and the same body from another caller is no replay either.
        bobs = patch_me(client, bob["token"], {"city": "厦门"}, key="k-shared-2")
        alices = patch_me(client, alice["token"], {"city": "厦门"}, key="k-shared-2")
        assert bobs.get_json()["id"] == bob["member"]["id"]
        assert alices.get_json()["id"] == alice["member"]["id"]
        assert "Idempotent-Replayed" not in alices.headers

    def test_an_unauthenticated_request_does_not_claim_the_key(self, client, alice):
        answer = client.patch("/mp/v1/me", json={"nickname": "X"}, headers={KEY: "k-anon"})
        assert_envelope(answer, 401, "unauthorized")
        later = patch_me(client, alice["token"], {"nickname": "Y"}, key="k-anon")
        assert later.status_code == 200
        assert "Idempotent-Replayed" not in later.headers


@pytest.mark.mariadb
def test_ten_concurrent_retries_merge_once(committing_app, sim, engine):
    """Ten retries of one phone binding race: one runs (a merge), nine replay its answer."""
    setup = committing_app.test_client()
    holder = log_in(setup, sim, "o-race-holder")
    newcomer = log_in(setup, sim, "o-race-newcomer")
    bound = post_phone(setup, holder["token"], phone_code(sim, "13899990000"))
    assert bound.status_code == 200
    code = phone_code(sim, "13899990000")
    threads = 10
    start = threading.Barrier(threads)

    def attempt(_: int):
        client = committing_app.test_client()
        start.wait(timeout=10)
        answer = post_phone(client, newcomer["token"], code, key="k-race")
        return answer.status_code, answer.get_data(), answer.headers.get("Idempotent-Replayed")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        answers = list(pool.map(attempt, range(threads)))

    assert {(status, body) for status, body, _ in answers} == {(answers[0][0], answers[0][1])}
    assert answers[0][0] == 200, answers[0][1]
    assert sorted(replayed or "" for _, _, replayed in answers) == [""] + ["true"] * 9
    with engine.connect() as connection:
        merges = connection.execute(
            select(MemberMerge.from_member_id, MemberMerge.into_member_id).where(
                MemberMerge.from_member_id == newcomer["member"]["id"]
            )
        ).all()
        records = connection.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.key == "k-race")
        )
    assert [tuple(m) for m in merges] == [(newcomer["member"]["id"], holder["member"]["id"])]
    assert records == 1
