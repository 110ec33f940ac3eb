"""Fixtures the HTTP tests share: members logged in through the simulator, admins with a
token, row counts, and an app that commits for real (for the concurrency tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app import create_app
from tests.conftest import make_config, remove_rows_since, snapshot_rows
from tests.factories import AdminFactory
from tests.helpers import bearer, log_in, phone_code
from wechat_hooks.simulator import SimulatorServer

ADMIN_PASSWORD = "correct horse battery"


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


@pytest.fixture
def login(client: FlaskClient, sim: SimulatorServer) -> Callable[..., dict[str, Any]]:
    """Log a consumer in through the simulator: the answer of POST /mp/v1/auth/login."""

    def _login(openid: str, unionid: str | None = None) -> dict[str, Any]:
        return log_in(client, sim, openid, unionid)

    return _login


@pytest.fixture
def bind_phone(client: FlaskClient, sim: SimulatorServer) -> Callable[..., Any]:
    def _bind(token: str, phone: str, **headers: str) -> Any:
        return client.post(
            "/mp/v1/auth/phone",
            json={"code": phone_code(sim, phone)},
            headers=bearer(token) | headers,
        )

    return _bind


@pytest.fixture
def count(session: Session) -> Callable[[Any], int]:
    """Rows of a model, as the database holds them now."""

    def _count(model: Any) -> int:
        session.expire_all()
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return _count


# One cheap hash for the accounts tests only need to be signed in with (the real default,
# scrypt, costs a tenth of a second per hash and per check). Accounts created through the
# service or the CLI get the real one.
_CHEAP_HASH = generate_password_hash(ADMIN_PASSWORD, method="pbkdf2:sha256:1")


@pytest.fixture
def admin_token(client: FlaskClient, session: Session) -> Callable[[str], str]:
    """A signed-in account of the given role: a row from the factory, logged in over HTTP."""
    made = iter(range(1, 1000))

    def _token(role: str) -> str:
        username = f"{role}-{next(made)}"
        AdminFactory(username=username, role=role, password_hash=_CHEAP_HASH)
        session.commit()
        answer = client.post(
            "/admin/v1/auth/login", json={"username": username, "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.get_json()
        return str(answer.get_json()["token"])

    return _token


@pytest.fixture
def committing_app(
    sim: SimulatorServer, database_url: str, engine: Engine, redis: Any
) -> Iterator[Flask]:
    """An app whose use cases commit for real, so that several threads see each other's
    rows; every row it wrote is deleted afterwards."""
    snapshot = snapshot_rows(engine)
    app = create_app(make_config(sim, database_url), engine=engine, redis=redis)
    try:
        yield app
    finally:
        remove_rows_since(engine, snapshot)


# A consumer at the till: what the open-API tests (orders, partners) share.
# 10:00 on 4 May 2026 in Shanghai.
T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)
PHONE = "13812345678"


@pytest.fixture
def frozen(time_machine: Any) -> Any:
    time_machine.move_to(T0, tick=False)
    return time_machine


@pytest.fixture
def member(frozen: Any, login: Any, bind_phone: Any) -> dict[str, Any]:
    """A consumer who logged in (with a unionid) and bound a phone."""
    answer = login("o-orders", unionid="u-orders")
    assert bind_phone(answer["token"], PHONE).status_code == 200
    return dict(answer)


@pytest.fixture
def card_no(member: dict[str, Any]) -> str:
    return str(member["member"]["card_no"])


@pytest.fixture
def member_id(member: dict[str, Any]) -> int:
    return int(member["member"]["id"])
