"""The open API's rules as API.md states them, written once for the bench.

The load generator signs with these, the floors verify with them, and the row check
compares the app's fingerprints and request hashes with them. They are written from the
spec, not imported from the app: the bench checks once per run that the app agrees
(``app.partners.rules.sign``), and the row check fails if its fingerprints differ.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

SIGNED_HEADERS = ("X-App-Key", "X-Timestamp", "X-Nonce", "X-Signature")
NONCE_KEY_PREFIX = "open:nonces:"  # one sorted set per app key, scored by X-Timestamp
MAX_NONCE_LENGTH = 64


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:  # noqa: PLR0917 - the five parts of the signed string
    """HMAC-SHA256 hex of ``METHOD\\npath\\ntimestamp\\nnonce\\nsha256(body)``."""
    digest = hashlib.sha256(body).hexdigest()
    message = "\n".join((method.upper(), path, timestamp, nonce, digest)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(
    app_key: str, secret: str, method: str, path: str, body: bytes, *, nonce: str, timestamp: int
) -> tuple[tuple[str, str], ...]:
    signature = sign(secret, method, path, str(timestamp), nonce, body)
    return (
        ("Content-Type", "application/json"),
        ("X-App-Key", app_key),
        ("X-Timestamp", str(timestamp)),
        ("X-Nonce", nonce),
        ("X-Signature", signature),
    )


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):  # an absent optional field and a null one are the same
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    return value


def fingerprint(request: Mapping[str, Any]) -> str:
    """What two sends of "the same request" under one external id agree on: sha256 hex of
    the parsed request, keys sorted, times in UTC, nulls dropped."""
    text = json.dumps(
        _canonical(request), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    """The Idempotency-Key's request identity: method, path, query and body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def answer_text(document: Any) -> str:
    """A JSON answer as the app writes it (Flask's compact JSON, key order kept, UTF-8
    as is, a final newline): stored answers replay byte for byte."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n"


def parse_instant(text: Any) -> datetime:
    """An ISO 8601 time with its offset (``Z`` or ``+08:00``); naive times are refused."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment
