"""The app's configuration under test: the simulator in place of WeChat."""

from __future__ import annotations

from typing import Any

from app.config import Config
from tests.support import settings
from tests.support.wechat import MP_APPID, MP_SECRET
from wechat_hooks.simulator import SimulatorServer


def make_config(sim: SimulatorServer, database_url: str, **changes: Any) -> Config:
    return Config(
        env="test",
        database_url=database_url,
        redis_url=settings.REDIS_URL,
        secret_key=settings.SECRET_KEY,
        wechat_mp_appid=MP_APPID,
        wechat_mp_secret=MP_SECRET,
        wechat_api_base=sim.base_url,
        log_json=False,
    ).with_overrides(**changes)
