"""Open API request signing (see API.md) and secret encryption at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# An order channel as API.md names them: pos, tmall, jd, youzan, ...
CHANNEL_PATTERN = r"^[a-z][a-z0-9_]{0,15}$"
_CHANNEL = re.compile(CHANNEL_PATTERN)


def clean_channels(channels: Iterable[str]) -> tuple[str, ...] | None:
    """The distinct channels, sorted; None when one is not a channel code (or none given)."""
    cleaned = sorted({channel.strip() for channel in channels})
    if not cleaned or not all(_CHANNEL.fullmatch(channel) for channel in cleaned):
        return None
    return tuple(cleaned)


def may_use_channel(channels: tuple[str, ...] | None, channel: str) -> bool:
    """None allows every channel (partners created without a list)."""
    return channels is None or channel in channels


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def sign(  # noqa: PLR0917 - the signed string has these five parts
    secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes
) -> str:
    message = string_to_sign(method, path, timestamp, nonce, body).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"partner-secrets|" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _ring(secret_key: str, fallback_keys: Sequence[str]) -> MultiFernet:
    """SECRET_KEY first (MultiFernet encrypts with the first key), then the fallbacks."""
    return MultiFernet([_fernet(secret_key), *(_fernet(key) for key in fallback_keys)])


def encrypt_secret(secret_key: str, app_secret: str) -> str:
    return _fernet(secret_key).encrypt(app_secret.encode()).decode()


def decrypt_secret(
    secret_key: str, encrypted: str, fallback_keys: Sequence[str] = ()
) -> str | None:
    """The secret, decrypted under SECRET_KEY or any of the fallback keys; None when none
    of them encrypted it (a key removed before ``partners reencrypt`` ran)."""
    try:
        return _ring(secret_key, fallback_keys).decrypt(encrypted.encode()).decode()
    except InvalidToken:
        return None


def reencrypt_secret(
    secret_key: str, encrypted: str, fallback_keys: Sequence[str] = ()
) -> str | None:
    """The secret encrypted under SECRET_KEY: ``encrypted`` itself when it already is,
    a new token when a fallback key encrypted it, None when no key of the ring did."""
    try:
        _fernet(secret_key).decrypt(encrypted.encode())
        return encrypted
    except InvalidToken:
        pass
    try:
        return _ring(secret_key, fallback_keys).rotate(encrypted.encode()).decode()
    except InvalidToken:
        return None
