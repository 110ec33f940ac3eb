"""Fixtures the HTTP tests share: members logged in through the simulator, admins with a
token and operators' and analysts' headers, row counts, and the consumer at the till the
open-API tests use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import AdminFactory
from tests.support.http import ADMIN_PASSWORD, CHEAP_HASH, PHONE, T0, bearer, log_in
from tests.support.rows import count_rows
from tests.support.wechat import phone_code
from wechat_hooks.simulator import SimulatorServer


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
    return lambda model: count_rows(session, model)


@pytest.fixture
def admin_token(client: FlaskClient, session: Session) -> Callable[[str], str]:
    """A signed-in account of the given role: a row from the factory, logged in over HTTP."""
    made = iter(range(1, 1000))

    def _token(role: str) -> str:
        username = f"{role}-{next(made)}"
        AdminFactory(username=username, role=role, password_hash=CHEAP_HASH)
        session.commit()
        answer = client.post(
            "/admin/v1/auth/login", json={"username": username, "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.get_json()
        return str(answer.get_json()["token"])

    return _token


@pytest.fixture
def operator(frozen: Any, admin_token: Callable[[str], str]) -> dict[str, str]:
    """The headers of a signed-in operator, whose token is issued at the frozen time."""
    return bearer(admin_token("operator"))


@pytest.fixture
def analyst(frozen: Any, admin_token: Callable[[str], str]) -> dict[str, str]:
    """The headers of a signed-in analyst, whose token is issued at the frozen time."""
    return bearer(admin_token("analyst"))


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
