"""Open API signatures as API.md defines them, partner secrets encrypted at rest, and the
channel codes a partner may be given."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.partners import rules

SECRET = "partner-app-secret"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def reference_signature(  # noqa: PLR0917 - the five parts of the signed string
    secret: str, method: str, path: str, ts: str, nonce: str, body: bytes
) -> str:
    """API.md: hex HMAC-SHA256(secret, METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nSHA256_HEX(BODY))."""
    message = f"{method}\n{path}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_the_string_to_sign_has_the_five_parts_of_the_contract() -> None:
    body = b'{"channel":"pos","amount_cents":1999}'

    text = rules.string_to_sign("post", "/open/v1/orders", "1767225600", "n-1", body)

    assert text.split("\n") == [
        "POST",
        "/open/v1/orders",
        "1767225600",
        "n-1",
        hashlib.sha256(body).hexdigest(),
    ]


def test_a_get_signs_the_hash_of_the_empty_body() -> None:
    text = rules.string_to_sign("GET", "/open/v1/members/lookup?card_no=1", "1", "n", b"")

    assert text.endswith("\n" + EMPTY_SHA256)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/open/v1/orders", b'{"channel":"pos","external_id":"A-1"}'),
        ("GET", "/open/v1/members/lookup?phone=13800138000", b""),
        ("POST", "/open/v1/coupons/C%2F1/redeem", '{"store_code":"上海一店"}'.encode()),
        ("get", "/open/v1/members/lookup?card_no=799273987135&x=1", b""),
    ],
)
def test_sign_matches_an_independently_computed_hmac(method: str, path: str, body: bytes) -> None:
    ts, nonce = "1767225600", "3f9c2a7d11e04b5c"

    signature = rules.sign(SECRET, method, path, ts, nonce, body)

    assert signature == reference_signature(SECRET, method.upper(), path, ts, nonce, body)
    assert len(signature) == 64
    assert signature == signature.lower()


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "other-secret"},
        {"method": "PUT"},
        {"path": "/open/v1/orders?x=1"},
        {"timestamp": "1767225601"},
        {"nonce": "other-nonce"},
        {"body": b'{"amount_cents":2000}'},
    ],
)
def test_every_part_is_covered_by_the_signature(change: dict[str, object]) -> None:
    base: dict[str, object] = {
        "secret": SECRET,
        "method": "POST",
        "path": "/open/v1/orders",
        "timestamp": "1767225600",
        "nonce": "n-1",
        "body": b'{"amount_cents":1999}',
    }
    changed = base | change

    assert rules.sign(**base) != rules.sign(**changed)  # type: ignore[arg-type]


def test_signature_matches_accepts_case_and_surrounding_space_only() -> None:
    expected = rules.sign(SECRET, "GET", "/p", "1", "n", b"")

    assert rules.signature_matches(expected, expected)
    assert rules.signature_matches(expected, f" {expected.upper()}\n")
    assert not rules.signature_matches(expected, expected[:-1])
    assert not rules.signature_matches(expected, "0" * 64)


def test_a_secret_roundtrips_through_encryption() -> None:
    encrypted = rules.encrypt_secret("server-secret-key", SECRET)

    assert SECRET not in encrypted
    assert rules.decrypt_secret("server-secret-key", encrypted) == SECRET


def test_encryption_is_randomised() -> None:
    first = rules.encrypt_secret("server-secret-key", SECRET)
    second = rules.encrypt_secret("server-secret-key", SECRET)

    assert first != second
    assert rules.decrypt_secret("server-secret-key", second) == SECRET


def test_the_wrong_key_decrypts_to_none() -> None:
    encrypted = rules.encrypt_secret("server-secret-key", SECRET)

    assert rules.decrypt_secret("rotated-secret-key", encrypted) is None


@pytest.mark.parametrize("garbage", ["", "not-a-token", "gAAAAA", "密文"])
def test_garbage_decrypts_to_none(garbage: str) -> None:
    assert rules.decrypt_secret("server-secret-key", garbage) is None


def test_channels_are_kept_as_distinct_sorted_codes() -> None:
    assert rules.clean_channels(["tmall", " pos", "tmall"]) == ("pos", "tmall")


@pytest.mark.parametrize(
    "channels", [[], [""], ["POS"], ["pos", ""], ["pos", "tm all"], ["a" * 17], ["*"]], ids=repr
)
def test_anything_but_channel_codes_is_refused(channels: list[str]) -> None:
    assert rules.clean_channels(channels) is None


def test_no_channel_list_means_every_channel() -> None:
    assert rules.may_use_channel(None, "jd")
    assert rules.may_use_channel(("pos", "tmall"), "pos")
    assert not rules.may_use_channel(("pos", "tmall"), "jd")
