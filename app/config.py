"""Configuration from the environment. The only module that reads ``os.environ``."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from limits import parse_many

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"
DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # refused in production
ENVIRONMENTS = ("development", "test", "production")
MIN_SECRET_KEY_LENGTH = 32


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
    # Earlier SECRET_KEYs, still accepted for verifying and decrypting: see ``secret_keys``.
    secret_key_fallbacks: tuple[str, ...] = ()
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
    # Operator log-in failures allowed per account and per source address (limits notation).
    admin_login_limit_per_account: str = "5/minute"
    admin_login_limit_per_address: str = "20/minute"
    # The tier simulation's lock lapses this long after its last batch if a worker dies.
    tier_simulation_lock_seconds: int = 120
    # Peers whose X-Forwarded-For names the client (IPs or CIDRs); none by default.
    trusted_proxies: tuple[str, ...] = ()
    # Outages answer 503 within these bounds (seconds) instead of hanging a worker.
    database_connect_timeout: int = 5
    database_read_timeout: int = 30
    database_write_timeout: int = 30
    database_pool_timeout: int = 10
    redis_connect_timeout: int = 1
    redis_socket_timeout: int = 3
    # The outbox drain (jobs process): see app/outbox/rules.py DrainPolicy.
    outbox_batch_size: int = 100
    outbox_lease_seconds: int = 120
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: int = 30
    # How notices reach members: "wechat" (subscribe messages) or "null" (dropped).
    messenger: str = "wechat"
    # Mini-program subscribe-message template for the points-expiry notice; unset: skipped.
    wechat_template_points_expiring: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The key ring, newest last (itsdangerous' order): the last one signs and
        encrypts, every one verifies and decrypts."""
        return (*self.secret_key_fallbacks, self.secret_key)

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
        }

    def _validate_outbox(self) -> None:
        for name, value in (
            ("OUTBOX_BATCH_SIZE", self.outbox_batch_size),
            ("OUTBOX_LEASE_SECONDS", self.outbox_lease_seconds),
            ("OUTBOX_MAX_ATTEMPTS", self.outbox_max_attempts),
            ("OUTBOX_BACKOFF_SECONDS", self.outbox_backoff_seconds),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be a positive integer")
        if self.messenger not in ("wechat", "null"):
            raise ConfigError(f"MESSENGER must be wechat or null, got {self.messenger!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        config = cls(
            env=_environment(env),
            database_url=normalise_database_url(read.text("DATABASE_URL", cls.database_url)),
            redis_url=read.optional("REDIS_URL"),
            secret_key=read.text("SECRET_KEY", DEV_SECRET_KEY),
            secret_key_fallbacks=read.items("SECRET_KEY_FALLBACKS"),
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
            admin_login_limit_per_account=read.text(
                "ADMIN_LOGIN_LIMIT_PER_ACCOUNT", cls.admin_login_limit_per_account
            ),
            admin_login_limit_per_address=read.text(
                "ADMIN_LOGIN_LIMIT_PER_ADDRESS", cls.admin_login_limit_per_address
            ),
            tier_simulation_lock_seconds=read.number(
                "TIER_SIMULATION_LOCK_SECONDS", cls.tier_simulation_lock_seconds
            ),
            trusted_proxies=read.networks("TRUSTED_PROXIES"),
            database_connect_timeout=read.number("DATABASE_CONNECT_TIMEOUT", 5),
            database_read_timeout=read.number("DATABASE_READ_TIMEOUT", 30),
            database_write_timeout=read.number("DATABASE_WRITE_TIMEOUT", 30),
            database_pool_timeout=read.number("DATABASE_POOL_TIMEOUT", 10),
            redis_connect_timeout=read.number("REDIS_CONNECT_TIMEOUT", 1),
            redis_socket_timeout=read.number("REDIS_SOCKET_TIMEOUT", 3),
            outbox_batch_size=read.number("OUTBOX_BATCH_SIZE", cls.outbox_batch_size),
            outbox_lease_seconds=read.number("OUTBOX_LEASE_SECONDS", cls.outbox_lease_seconds),
            outbox_max_attempts=read.number("OUTBOX_MAX_ATTEMPTS", cls.outbox_max_attempts),
            outbox_backoff_seconds=read.number(
                "OUTBOX_BACKOFF_SECONDS", cls.outbox_backoff_seconds
            ),
            messenger=read.text("MESSENGER", cls.messenger),
            wechat_template_points_expiring=read.optional("WECHAT_TEMPLATE_POINTS_EXPIRING"),
        )
        config.validate(explicit={key for key, value in env.items() if value.strip()})
        return config

    def validate(self, explicit: set[str] | None = None) -> None:
        if self.env not in ENVIRONMENTS:
            raise ConfigError(
                f"HUIYUAN_ENV must be one of {', '.join(ENVIRONMENTS)}, got {self.env!r}"
            )
        if self.card_qr_ttl_seconds <= 0:
            raise ConfigError("CARD_QR_TTL_SECONDS must be a positive number of seconds")
        if self.tier_simulation_lock_seconds <= 0:
            raise ConfigError("TIER_SIMULATION_LOCK_SECONDS must be a positive number of seconds")
        for key, value in (
            ("ADMIN_LOGIN_LIMIT_PER_ACCOUNT", self.admin_login_limit_per_account),
            ("ADMIN_LOGIN_LIMIT_PER_ADDRESS", self.admin_login_limit_per_address),
        ):
            _check_rate_limit(key, value)
        for name, seconds in self._timeouts().items():
            if seconds <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        self._validate_outbox()
        if not self.is_production:
            return
        given = explicit if explicit is not None else set()
        missing = [k for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY") if k not in given]
        if missing:
            raise ConfigError(f"HUIYUAN_ENV=production needs {', '.join(missing)}")
        if _weak_key(self.secret_key):
            raise ConfigError(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
                "and not the development key in production"
            )
        if any(_weak_key(key) for key in self.secret_key_fallbacks):
            raise ConfigError(
                f"every SECRET_KEY_FALLBACKS key must be at least {MIN_SECRET_KEY_LENGTH} "
                "characters and not the development key in production"
            )
        defaults = [
            variable
            for variable, attribute in DEMO_SETTINGS.items()
            if getattr(self, attribute) == getattr(Config, attribute)
        ]
        if defaults:
            raise ConfigError(
                f"HUIYUAN_ENV=production refuses the demo values of {', '.join(defaults)}: "
                "set the real ones"
            )
        if self.wechat_api_base is not None:
            raise ConfigError(
                "WECHAT_API_BASE sends WeChat calls to the simulator; "
                "production calls WeChat's own hosts: unset it"
            )


# Every setting whose default is a demo value (the simulator's appids, secrets and tokens):
# production refuses to start while any of them is left at its default.
DEMO_SETTINGS = {
    "WECHAT_MP_APPID": "wechat_mp_appid",
    "WECHAT_MP_SECRET": "wechat_mp_secret",
    "WECHAT_OA_APPID": "wechat_oa_appid",
    "WECHAT_OA_SECRET": "wechat_oa_secret",
    "WECHAT_OA_TOKEN": "wechat_oa_token",
    "WECOM_CORP_ID": "wecom_corp_id",
    "WECOM_SECRET": "wecom_secret",
    "WECOM_TOKEN": "wecom_token",
}


def _weak_key(key: str) -> bool:
    return key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH


def _environment(env: Mapping[str, str]) -> str:
    """HUIYUAN_ENV exactly as written: unset means development, anything set must be one of
    ENVIRONMENTS (a blank or misspelt value is a mistake, not a request for the default)."""
    if "HUIYUAN_ENV" not in env:
        return "development"
    value = env["HUIYUAN_ENV"]
    if value not in ENVIRONMENTS:
        raise ConfigError(f"HUIYUAN_ENV must be one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return value


def _check_rate_limit(key: str, value: str) -> None:
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{key} must be a rate limit such as 5/minute, got {value!r}") from None


class _Reader:
    """Typed reads of the environment; blank values count as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, key: str) -> str | None:
        value = self._env.get(key, "").strip()
        return value or None

    def items(self, key: str) -> tuple[str, ...]:
        """A comma-separated list; blank items are dropped."""
        raw = self.optional(key) or ""
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def text(self, key: str, default: str) -> str:
        return self.optional(key) or default

    def networks(self, key: str) -> tuple[str, ...]:
        """Comma-separated IP addresses or CIDR networks."""
        entries = tuple(e.strip() for e in (self.optional(key) or "").split(",") if e.strip())
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"{key}: {entry!r} is not an IP address or network") from None
        return entries

    def number(self, key: str, default: int) -> int:
        raw = self.optional(key)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
