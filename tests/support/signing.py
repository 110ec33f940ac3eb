"""Signed open-API calls, as a store system makes them."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.partners import rules as signing


@dataclass(frozen=True)
class PartnerKeys:
    app_key: str
    app_secret: str


def signed_headers(
    keys: PartnerKeys,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(8)
    signature = signing.sign(keys.app_secret, method, path, ts, nonce, body)
    return {
        "X-App-Key": keys.app_key,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": signature,
    }


def open_get(client: FlaskClient, keys: PartnerKeys, path: str, **kw: Any) -> TestResponse:
    return client.get(path, headers=signed_headers(keys, "GET", path, **kw))


def open_post(
    client: FlaskClient, keys: PartnerKeys, path: str, body: Any, **kw: Any
) -> TestResponse:
    raw = json.dumps(body).encode()
    headers = signed_headers(keys, "POST", path, raw, **kw)
    headers["Content-Type"] = "application/json"
    return client.post(path, data=raw, headers=headers)
