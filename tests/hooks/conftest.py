"""Fixtures for the WeChat adapters and the simulator: a live simulator per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from wechat_hooks.clients import make_wechat_client, make_wecom_client
from wechat_hooks.simulator import SimulatorServer

MP_APPID, MP_SECRET = "wx-test-mp", "mp-secret"
OA_APPID, OA_SECRET = "wx-test-oa", "oa-secret"
CORP_ID, CORP_SECRET = "ww-test-corp", "corp-secret"


class SimControl:
    """The consumer's side of WeChat, through the simulator's /sim endpoints."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(self.base_url + path.lstrip("/"), json=body or {}, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def login_code(self, openid: str = "o-alice", unionid: str | None = None) -> str:
        body = {"openid": openid} | ({"unionid": unionid} if unionid else {})
        return str(self.post("sim/mp/codes", body)["code"])

    def fault(self, path: str, errcode: int, times: int = 1) -> None:
        self.post("sim/faults", {"path": path, "errcode": errcode, "times": times})

    def messages(self, api: str | None = None) -> list[dict[str, Any]]:
        params = {"api": api} if api else {}
        response = self.http.get(self.base_url + "sim/messages", params=params, timeout=5)
        return list(response.json()["items"])


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(
        apps={MP_APPID: MP_SECRET, OA_APPID: OA_SECRET}, corps={CORP_ID: CORP_SECRET}
    )
    with server:
        yield server


@pytest.fixture
def control(sim: SimulatorServer) -> SimControl:
    return SimControl(sim.base_url)


@pytest.fixture
def mp_client(sim: SimulatorServer) -> Any:
    return make_wechat_client(MP_APPID, MP_SECRET, api_base=sim.base_url)


@pytest.fixture
def oa_client(sim: SimulatorServer) -> Any:
    return make_wechat_client(OA_APPID, OA_SECRET, api_base=sim.base_url)


@pytest.fixture
def wecom_client(sim: SimulatorServer) -> Any:
    return make_wecom_client(CORP_ID, CORP_SECRET, api_base=sim.base_url)
