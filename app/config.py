"""Configuration from the environment. The only module that reads ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"
DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # refused in production


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


def normalise_database_url(url: str) -> str:
    """Use pymysql for MySQL URLs and force utf8mb4, whatever the operator wrote."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme.split("+", 1)[0] in ("mysql", "mariadb"):
        scheme = "mysql+pymysql"
        query = dict(parse_qsl(parts.query))
        query["charset"] = "utf8mb4"
        return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return url


@dataclass(frozen=True)
class Config:
    env: str = "development"
    database_url: str = f"sqlite:///{VAR_DIR / 'huiyuan.db'}"
    redis_url: str | None = None  # None: the in-process stand-in (development and tests only)
    secret_key: str = DEV_SECRET_KEY
    timezone: str = "Asia/Shanghai"
    wechat_mp_appid: str = "wx-demo-miniprogram"
    wechat_mp_secret: str = "demo-mp-secret"
    wechat_oa_appid: str = "wx-demo-official"
    wechat_oa_secret: str = "demo-oa-secret"
    wechat_oa_token: str = "demo-oa-token"
    wechat_oa_aes_key: str | None = None
    wecom_corp_id: str = "ww-demo-corp"
    wecom_secret: str = "demo-wecom-secret"
    wecom_token: str = "demo-wecom-token"
    wecom_aes_key: str | None = None
    wechat_api_base: str | None = None  # e.g. the local simulator: http://127.0.0.1:8200/
    card_qr_ttl_seconds: int = 60
    token_ttl_seconds: int = 7 * 24 * 3600
    open_api_clock_skew_seconds: int = 300
    log_json: bool = True
    # Outages answer 503 within these bounds (seconds) instead of hanging a worker.
    database_connect_timeout: int = 5
    database_read_timeout: int = 30
    database_write_timeout: int = 30
    database_pool_timeout: int = 10
    redis_connect_timeout: int = 1
    redis_socket_timeout: int = 3
    idempotency_lease_seconds: int = 60
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)

    def _timeouts(self) -> dict[str, int]:
        return {
            "DATABASE_CONNECT_TIMEOUT": self.database_connect_timeout,
            "DATABASE_READ_TIMEOUT": self.database_read_timeout,
            "DATABASE_WRITE_TIMEOUT": self.database_write_timeout,
            "DATABASE_POOL_TIMEOUT": self.database_pool_timeout,
            "REDIS_CONNECT_TIMEOUT": self.redis_connect_timeout,
            "REDIS_SOCKET_TIMEOUT": self.redis_socket_timeout,
            "IDEMPOTENCY_LEASE_SECONDS": self.idempotency_lease_seconds,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        config = cls(
            env=read.text("HUIYUAN_ENV", "development"),
            database_url=normalise_database_url(read.text("DATABASE_URL", cls.database_url)),
            redis_url=read.optional("REDIS_URL"),
            secret_key=read.text("SECRET_KEY", DEV_SECRET_KEY),
            timezone=read.text("TIMEZONE", "Asia/Shanghai"),
            wechat_mp_appid=read.text("WECHAT_MP_APPID", cls.wechat_mp_appid),
            wechat_mp_secret=read.text("WECHAT_MP_SECRET", cls.wechat_mp_secret),
            wechat_oa_appid=read.text("WECHAT_OA_APPID", cls.wechat_oa_appid),
            wechat_oa_secret=read.text("WECHAT_OA_SECRET", cls.wechat_oa_secret),
            wechat_oa_token=read.text("WECHAT_OA_TOKEN", cls.wechat_oa_token),
            wechat_oa_aes_key=read.optional("WECHAT_OA_AES_KEY"),
            wecom_corp_id=read.text("WECOM_CORP_ID", cls.wecom_corp_id),
            wecom_secret=read.text("WECOM_SECRET", cls.wecom_secret),
            wecom_token=read.text("WECOM_TOKEN", cls.wecom_token),
            wecom_aes_key=read.optional("WECOM_AES_KEY"),
            wechat_api_base=read.optional("WECHAT_API_BASE"),
            card_qr_ttl_seconds=read.number("CARD_QR_TTL_SECONDS", 60),
            log_json=read.text("LOG_FORMAT", "json") == "json",
            database_connect_timeout=read.number("DATABASE_CONNECT_TIMEOUT", 5),
            database_read_timeout=read.number("DATABASE_READ_TIMEOUT", 30),
            database_write_timeout=read.number("DATABASE_WRITE_TIMEOUT", 30),
            database_pool_timeout=read.number("DATABASE_POOL_TIMEOUT", 10),
            redis_connect_timeout=read.number("REDIS_CONNECT_TIMEOUT", 1),
            redis_socket_timeout=read.number("REDIS_SOCKET_TIMEOUT", 3),
            idempotency_lease_seconds=read.number("IDEMPOTENCY_LEASE_SECONDS", 60),
        )
        config.validate(explicit={key for key, value in env.items() if value.strip()})
        return config

    def validate(self, explicit: set[str] | None = None) -> None:
        if self.card_qr_ttl_seconds <= 0:
            raise ConfigError("CARD_QR_TTL_SECONDS must be a positive number of seconds")
        for name, seconds in self._timeouts().items():
            if seconds <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        if not self.is_production:
            return
        given = explicit if explicit is not None else set()
        missing = [k for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") if k not in given]
        if missing:
            raise ConfigError(f"HUIYUAN_ENV=production needs {', '.join(missing)}")
        if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")


class _Reader:
    """Typed reads of the environment; blank values count as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, key: str) -> str | None:
        value = self._env.get(key, "").strip()
        return value or None

    def text(self, key: str, default: str) -> str:
        return self.optional(key) or default

    def number(self, key: str, default: int) -> int:
        raw = self.optional(key)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
