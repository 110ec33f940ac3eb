"""Pure rules of the members context: card numbers, masking, the card QR payload."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

CARD_NO_LENGTH = 12
QR_PREFIX = "HY1"


def luhn_check_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:  # doubled positions, counted from the check digit's left
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_card_no(card_no: str) -> bool:
    if len(card_no) != CARD_NO_LENGTH or not card_no.isascii() or not card_no.isdigit():
        return False
    return luhn_check_digit(card_no[:-1]) == card_no[-1]


def new_card_no() -> str:
    """A random 12-digit card number whose last digit is a Luhn check digit."""
    body = str(secrets.randbelow(9 * 10**10) + 10**10)  # 11 digits, no leading zero
    return body + luhn_check_digit(body)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    if len(phone) < 11:  # too short to show 3 + 4 and still hide 4
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


def canonical_phone(raw: str) -> str:
    """A phone as store systems send it, in the stored form: mainland numbers bare
    ("+86 138-0013-8000" is "13800138000"), others "+<code><number>"."""
    digits = "".join(ch for ch in raw if ch.isascii() and ch.isdigit())
    if raw.strip().startswith("+"):
        if digits.startswith("86") and len(digits) == 13:
            return digits[2:]
        return f"+{digits}"
    if digits.startswith("86") and len(digits) == 13:
        return digits[2:]
    return digits


MAX_PHONE_LENGTH = 24  # members.phone


def _token_like(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isascii() and text.isprintable()


def is_storable_session(openid: str, unionid: str | None, session_key: str) -> bool:
    """WeChat's ids are short printable ASCII; the columns hold 128, 64 and 128."""
    return (
        _token_like(openid, 128)
        and (unionid is None or _token_like(unionid, 64))
        and _token_like(session_key, 128)
    )


class UnusablePhone(ValueError):
    """WeChat answered a phone number that is not one (or is longer than a phone can be)."""


def _ascii_digits(text: str, low: int, high: int) -> bool:
    return low <= len(text) <= high and text.isascii() and text.isdigit()


def normalise_phone(pure_phone_number: str, country_code: str) -> str:
    """Mainland numbers are stored bare (as POS systems send them), others with +code.

    UnusablePhone unless the number is 5 to 20 ASCII digits and the code 1 to 3."""
    pure = pure_phone_number.strip()
    code = country_code.strip().lstrip("+") or "86"
    if not (_ascii_digits(pure, 5, 20) and _ascii_digits(code, 1, 3)):
        raise UnusablePhone("not a phone number")
    return pure if code == "86" else f"+{code}{pure}"


@dataclass(frozen=True)
class CardQr:
    card_no: str
    expires_at: datetime


class QrInvalid(Exception):
    """Not a payload this server signed."""


class QrExpired(Exception):
    def __init__(self, qr: CardQr) -> None:
        super().__init__("card QR payload has expired")
        self.qr = qr


def _qr_signature(secret: str, card_no: str, expires: int) -> str:
    message = f"card-qr|{card_no}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:24]


def issue_card_qr(*, card_no: str, now: datetime, ttl_seconds: int) -> CardQr:
    expires = int(now.timestamp()) + ttl_seconds
    return CardQr(card_no=card_no, expires_at=datetime.fromtimestamp(expires, UTC))


def encode_card_qr(secret: str, qr: CardQr) -> str:
    expires = int(qr.expires_at.timestamp())
    return f"{QR_PREFIX}.{qr.card_no}.{expires}.{_qr_signature(secret, qr.card_no, expires)}"


def decode_card_qr(*, secret: str | Sequence[str], payload: str, now: datetime) -> CardQr:
    """The card a payload names; QrInvalid if tampered, QrExpired once past its expiry.
    ``secret`` may be the key ring (old keys first, the signing key last): a payload signed
    with any of them is accepted, so a QR shown just before a SECRET_KEY rotation still
    works at the till."""
    parts = payload.split(".")
    # ASCII only: int() and isdigit() accept other scripts' digits, compare_digest refuses them.
    if not payload.isascii() or len(parts) != 4 or parts[0] != QR_PREFIX or not parts[2].isdigit():
        raise QrInvalid(payload)
    _, card_no, expires_raw, signature = parts
    keys = (secret,) if isinstance(secret, str) else tuple(secret)
    if not any(
        hmac.compare_digest(_qr_signature(key, card_no, int(expires_raw)), signature)
        for key in keys
    ):
        raise QrInvalid(payload)
    qr = CardQr(card_no=card_no, expires_at=datetime.fromtimestamp(int(expires_raw), UTC))
    if now >= qr.expires_at:
        raise QrExpired(qr)
    return qr
