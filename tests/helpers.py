"""Small helpers the API tests share: logging in through the simulator, signing open-API calls."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.partners import rules as signing
from wechat_hooks.simulator import SimulatorServer


def login_code(sim: SimulatorServer, openid: str, unionid: str | None = None) -> str:
    import requests

    body: dict[str, Any] = {"openid": openid}
    if unionid:
        body["unionid"] = unionid
    answer = requests.post(sim.base_url + "sim/mp/codes", json=body, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["code"])


def phone_code(sim: SimulatorServer, phone: str) -> str:
    import requests

    answer = requests.post(sim.base_url + "sim/mp/phone-codes", json={"phone": phone}, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["code"])


def log_in(
    client: FlaskClient, sim: SimulatorServer, openid: str, unionid: str | None = None
) -> dict[str, Any]:
    response = client.post("/mp/v1/auth/login", json={"code": login_code(sim, openid, unionid)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
