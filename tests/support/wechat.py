"""The consumer's side of WeChat for the app's tests: codes minted by the simulator."""

from __future__ import annotations

from typing import Any

import requests

from wechat_hooks.simulator import SimulatorServer

MP_APPID = "wx-test-mp"
MP_SECRET = "test-mp-secret"


def login_code(sim: SimulatorServer, openid: str, unionid: str | None = None) -> str:
    """A fresh wx.login code for ``openid``."""
    body: dict[str, Any] = {"openid": openid}
    if unionid:
        body["unionid"] = unionid
    answer = requests.post(sim.base_url + "sim/mp/codes", json=body, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["code"])


def phone_code(sim: SimulatorServer, phone: str) -> str:
    """A fresh getPhoneNumber code for ``phone``."""
    answer = requests.post(sim.base_url + "sim/mp/phone-codes", json={"phone": phone}, timeout=5)
    answer.raise_for_status()
    return str(answer.json()["code"])
