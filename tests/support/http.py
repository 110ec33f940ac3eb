"""HTTP helpers: consumers logged in through the simulator, bearer headers, the error
envelope of API.md and the fields a validation error names, and the consumer at the till the
open-API tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from tests.support.wechat import login_code
from wechat_hooks.simulator import SimulatorServer

ADMIN_PASSWORD = "correct horse battery"
# One cheap hash for accounts tests only need to be signed in with (the real default,
# scrypt, costs a tenth of a second per hash and per check). Accounts created through the
# service or the CLI get the real one.
CHEAP_HASH = generate_password_hash(ADMIN_PASSWORD, method="pbkdf2:sha256:1")

# A consumer at the till: 10:00 on 4 May 2026 in Shanghai, and the phone they bind.
T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)
PHONE = "13812345678"


def log_in(
    client: FlaskClient, sim: SimulatorServer, openid: str, unionid: str | None = None
) -> dict[str, Any]:
    """The answer of POST /mp/v1/auth/login for a fresh code of ``openid``."""
    response = client.post("/mp/v1/auth/login", json={"code": login_code(sim, openid, unionid)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error answer of API.md, exactly: {"error": {"code", "message", "details"}}."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return dict(error)


def fields_of(response: Any) -> dict[str, Any]:
    """The fields a 422 validation_error names, each with what is wrong with it."""
    return dict(assert_envelope(response, 422, "validation_error")["details"]["fields"])
