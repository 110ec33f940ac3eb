"""Pure rules of the members context: card numbers, phone masking, the card QR payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.members import rules
from app.members.rules import CardQr, QrExpired, QrInvalid

SECRET = "qr-secret-for-tests"
NOW = datetime(2026, 5, 1, 8, 30, 15, tzinfo=UTC)


def luhn_valid(number: str) -> bool:
    """Textbook Luhn, written independently of the code under test."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return total % 10 == 0


# card numbers


def test_the_textbook_luhn_example_gets_its_check_digit() -> None:
    assert rules.luhn_check_digit("7992739871") == "3"
    assert luhn_valid("79927398713")


def test_new_card_numbers_are_12_ascii_digits_with_a_valid_check_digit() -> None:
    numbers = {rules.new_card_no() for _ in range(200)}

    assert len(numbers) == 200  # random, not a counter that repeats
    for number in numbers:
        assert len(number) == 12
        assert number.isascii()
        assert number.isdigit()
        assert number[0] != "0"
        assert luhn_valid(number)
        assert rules.is_valid_card_no(number)


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_the_check_digit_completes_any_body(body: str) -> None:
    card_no = body + rules.luhn_check_digit(body)

    assert luhn_valid(card_no)
    assert rules.is_valid_card_no(card_no)


@given(
    body=st.text(alphabet="0123456789", min_size=11, max_size=11),
    position=st.integers(min_value=0, max_value=11),
    shift=st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_is_detected(body: str, position: int, shift: int) -> None:
    card_no = body + rules.luhn_check_digit(body)
    wrong_digit = str((int(card_no[position]) + shift) % 10)
    typo = card_no[:position] + wrong_digit + card_no[position + 1 :]

    assert typo != card_no
    assert not rules.is_valid_card_no(typo)


@pytest.mark.parametrize(
    "card_no",
    [
        "",
        "79927398713",  # valid Luhn, but 11 digits
        "0799273987135",  # 13 digits
        "12345678901a",
        "１２３４５６７８９０１２",  # full-width digits: isdigit() but not ASCII
        "12345678901 ",
    ],
)
def test_malformed_card_numbers_are_invalid(card_no: str) -> None:
    assert not rules.is_valid_card_no(card_no)


# phones


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+85261234567", "+85****4567"),
        (None, None),
        ("", None),
        ("12345", "*****"),
    ],
)
def test_mask_phone(phone: str | None, masked: str | None) -> None:
    assert rules.mask_phone(phone) == masked


@given(st.text(alphabet="0123456789", min_size=1, max_size=16))
def test_a_masked_phone_hides_at_least_four_digits(phone: str) -> None:
    masked = rules.mask_phone(phone)

    assert masked is not None
    shown = masked.replace("*", "")
    assert len(shown) <= max(len(phone) - 4, 0), masked


@pytest.mark.parametrize(
    ("pure", "country_code", "stored"),
    [
        ("13800138000", "86", "13800138000"),
        ("13800138000", "+86", "13800138000"),
        (" 13800138000 ", " 86 ", "13800138000"),
        ("13800138000", "", "13800138000"),
        ("61234567", "852", "+85261234567"),
        ("61234567", "+852", "+85261234567"),
    ],
)
def test_normalise_phone(pure: str, country_code: str, stored: str) -> None:
    assert rules.normalise_phone(pure, country_code) == stored


# card QR payload


def _issue(card_no: str | None = None, ttl: int = 60) -> CardQr:
    return rules.issue_card_qr(card_no=card_no or rules.new_card_no(), now=NOW, ttl_seconds=ttl)


def test_a_card_qr_expires_ttl_seconds_after_issue() -> None:
    qr = _issue(ttl=60)

    assert qr.expires_at == NOW + timedelta(seconds=60)
    assert qr.expires_at.tzinfo is not None


def test_an_encoded_card_qr_decodes_to_its_card_until_expiry() -> None:
    qr = _issue()
    payload = rules.encode_card_qr(SECRET, qr)

    assert payload.startswith(f"{rules.QR_PREFIX}.{qr.card_no}.")
    for moment in (NOW, NOW + timedelta(seconds=30), qr.expires_at - timedelta(microseconds=1)):
        assert rules.decode_card_qr(secret=SECRET, payload=payload, now=moment) == qr


@pytest.mark.parametrize("after", [timedelta(0), timedelta(seconds=1), timedelta(days=1)])
def test_a_card_qr_is_expired_exactly_at_and_after_its_expiry(after: timedelta) -> None:
    qr = _issue()
    payload = rules.encode_card_qr(SECRET, qr)

    with pytest.raises(QrExpired) as caught:
        rules.decode_card_qr(secret=SECRET, payload=payload, now=qr.expires_at + after)

    assert caught.value.qr == qr


_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _tamper(payload: str, index: int, value: str) -> str:
    parts = payload.split(".")
    parts[index] = value
    return ".".join(parts)


def _tampered_payloads() -> list[tuple[str, str]]:
    qr = _issue(card_no="799273987135")
    payload = rules.encode_card_qr(SECRET, qr)
    prefix, card_no, expires, signature = payload.split(".")
    other_card = "79927398712" + rules.luhn_check_digit("79927398712")
    later = str(int(expires) + 3600)
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return [
        ("card_no", _tamper(payload, 1, other_card)),
        ("expiry", _tamper(payload, 2, later)),
        ("expiry_non_ascii_digit", _tamper(payload, 2, expires[:-1] + "²")),
        ("expiry_full_width", _tamper(payload, 2, expires.translate(_FULL_WIDTH))),
        ("expiry_not_a_number", _tamper(payload, 2, "soon")),
        ("signature", _tamper(payload, 3, flipped)),
        ("signature_truncated", _tamper(payload, 3, signature[:-1])),
        ("signature_non_ascii", _tamper(payload, 3, signature[:-1] + "é")),
        ("prefix", _tamper(payload, 0, "HY2")),
        ("wrong_secret", rules.encode_card_qr("another-secret", qr)),
        ("extra_part", payload + ".x"),
        ("missing_part", ".".join([prefix, card_no, expires])),
        ("empty", ""),
    ]


@pytest.mark.parametrize(
    "payload", [pytest.param(payload, id=case) for case, payload in _tampered_payloads()]
)
def test_a_tampered_card_qr_is_invalid(payload: str) -> None:
    with pytest.raises(QrInvalid):
        rules.decode_card_qr(secret=SECRET, payload=payload, now=NOW)


def test_a_tampered_card_qr_is_invalid_even_once_expired() -> None:
    """A forged payload must not reach the expiry check: it says nothing about a real card."""
    qr = _issue()
    forged = _tamper(rules.encode_card_qr(SECRET, qr), 1, "799273987135")

    with pytest.raises(QrInvalid):
        rules.decode_card_qr(secret=SECRET, payload=forged, now=NOW + timedelta(days=2))
