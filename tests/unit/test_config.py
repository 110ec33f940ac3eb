"""Config.from_env: defaults, URL normalisation, and what production refuses."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from app.config import DEMO_SETTINGS, DEV_SECRET_KEY, Config, ConfigError
from app.container import make_redis

STRONG_SECRET = "s" * 32
PRODUCTION = {
    "HUIYUAN_ENV": "production",
    "DATABASE_URL": "mysql://huiyuan:pw@db.internal:3306/huiyuan",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": STRONG_SECRET,
    "WECHAT_MP_APPID": "wx0123456789abcdef",
    "WECHAT_MP_SECRET": "0123456789abcdef0123456789abcdef",
    "WECHAT_OA_APPID": "wxfedcba9876543210",
    "WECHAT_OA_SECRET": "fedcba9876543210fedcba9876543210",
    "WECHAT_OA_TOKEN": "oa-token-from-the-console",
    "WECOM_CORP_ID": "ww0123456789abcdef",
    "WECOM_SECRET": "wecom-secret-from-the-console",
    "WECOM_TOKEN": "wecom-token-from-the-console",
}


def test_defaults_from_an_empty_environment() -> None:
    config = Config.from_env({})

    assert config.env == "development"
    assert not config.is_production
    assert config.timezone == "Asia/Shanghai"
    assert config.card_qr_ttl_seconds == 60
    assert config.redis_url is None
    assert config.uses_embedded_redis
    assert config.secret_key == DEV_SECRET_KEY
    assert config.database_url.startswith("sqlite:///")
    assert config.log_json is True


def test_values_are_read_and_blank_ones_count_as_unset() -> None:
    config = Config.from_env(
        {
            "TIMEZONE": "Asia/Hong_Kong",
            "CARD_QR_TTL_SECONDS": " 120 ",
            "REDIS_URL": "   ",
            "WECHAT_API_BASE": "http://127.0.0.1:8200/",
            "LOG_FORMAT": "text",
        }
    )

    assert config.timezone == "Asia/Hong_Kong"
    assert config.card_qr_ttl_seconds == 120
    assert config.redis_url is None
    assert config.wechat_api_base == "http://127.0.0.1:8200/"
    assert config.log_json is False


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@127.0.0.1:3306/huiyuan",
        "mariadb://root@127.0.0.1:3306/huiyuan",
        "mysql+pymysql://root@127.0.0.1:3306/huiyuan",
        "mariadb+pymysql://root@127.0.0.1:3306/huiyuan",
        "mysql+mysqldb://root@127.0.0.1:3306/huiyuan",
        "mysql://root@127.0.0.1:3306/huiyuan?charset=utf8",
        "mysql://root@127.0.0.1:3306/huiyuan?charset=latin1",
    ],
)
def test_mysql_urls_use_pymysql_and_utf8mb4(url: str) -> None:
    config = Config.from_env({"DATABASE_URL": url})

    parsed = make_url(config.database_url)
    assert parsed.drivername == "mysql+pymysql"
    assert parsed.query["charset"] == "utf8mb4"
    assert (parsed.host, parsed.port, parsed.database, parsed.username) == (
        "127.0.0.1",
        3306,
        "huiyuan",
        "root",
    )


def test_other_query_options_and_the_password_survive_normalisation() -> None:
    url = "mysql://huiyuan:p%40ss@db:3306/huiyuan?ssl_ca=/etc/ssl/ca.pem&charset=utf8"

    parsed = make_url(Config.from_env({"DATABASE_URL": url}).database_url)

    assert parsed.password == "p@ss"
    assert parsed.query == {"ssl_ca": "/etc/ssl/ca.pem", "charset": "utf8mb4"}


def test_sqlite_urls_are_left_alone() -> None:
    url = "sqlite:////tmp/huiyuan.db"

    assert Config.from_env({"DATABASE_URL": url}).database_url == url


def test_production_starts_with_everything_given() -> None:
    config = Config.from_env(PRODUCTION)

    assert config.is_production
    assert config.secret_key == STRONG_SECRET
    assert config.redis_url == "redis://cache.internal:6379/0"
    assert make_url(config.database_url).drivername == "mysql+pymysql"


@pytest.mark.parametrize(
    "missing",
    [
        ("DATABASE_URL",),
        ("REDIS_URL",),
        ("SECRET_KEY",),
        ("DATABASE_URL", "REDIS_URL"),
        ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"),
    ],
)
def test_production_refuses_to_start_without_its_services(missing: tuple[str, ...]) -> None:
    environ = {k: v for k, v in PRODUCTION.items() if k not in missing}

    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ)

    message = str(caught.value)
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        assert (name in message) == (name in missing), message


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "SECRET_KEY"])
def test_production_counts_a_blank_value_as_missing(name: str) -> None:
    """A blank value falls back to the development default: SQLite, fakeredis, a known key."""
    with pytest.raises(ConfigError, match=name):
        Config.from_env(PRODUCTION | {name: "  "})


@pytest.mark.parametrize("secret", ["short", "x" * 31, DEV_SECRET_KEY])
def test_production_refuses_a_weak_secret_key(secret: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config.from_env(PRODUCTION | {"SECRET_KEY": secret})


def test_a_32_character_secret_key_is_enough() -> None:
    assert Config.from_env(PRODUCTION | {"SECRET_KEY": "k" * 32}).secret_key == "k" * 32


def test_development_accepts_the_defaults_it_refuses_in_production() -> None:
    config = Config.from_env({"HUIYUAN_ENV": "development", "SECRET_KEY": "short"})

    assert config.secret_key == "short"


@pytest.mark.parametrize("raw", ["sixty", "60s", "1.5", "0x3c"])
def test_a_bad_integer_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="CARD_QR_TTL_SECONDS"):
        Config.from_env({"CARD_QR_TTL_SECONDS": raw})


@pytest.mark.parametrize("raw", ["0", "-60"])
def test_the_card_qr_ttl_must_be_positive(raw: str) -> None:
    with pytest.raises(ConfigError, match="CARD_QR_TTL_SECONDS"):
        Config.from_env({"CARD_QR_TTL_SECONDS": raw})


def test_make_redis_refuses_the_in_process_stand_in_in_production() -> None:
    config = Config(env="production", secret_key=STRONG_SECRET, redis_url=None)

    with pytest.raises(RuntimeError, match="production"):
        make_redis(config)


def test_make_redis_gives_the_stand_in_outside_production() -> None:
    client = make_redis(Config(env="development", redis_url=None))

    client.set("k", "v")
    assert client.get("k") == "v"


def test_make_redis_connects_to_the_configured_url_lazily() -> None:
    client = make_redis(Config(env="production", redis_url="redis://127.0.0.1:6390/3"))

    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 3)
    assert kwargs["decode_responses"] is True
    client.close()


@pytest.mark.parametrize("env", ["development", "test", "production"])
def test_the_three_environments_are_accepted(env: str) -> None:
    assert Config.from_env(PRODUCTION | {"HUIYUAN_ENV": env}).env == env


@pytest.mark.parametrize(
    "env", ["", " ", "prod", "Production", "PRODUCTION", " production", "dev", "testing", "staging"]
)
def test_any_other_environment_refuses_to_start(env: str) -> None:
    with pytest.raises(ConfigError, match="HUIYUAN_ENV must be one of development, test, produc"):
        Config.from_env(PRODUCTION | {"HUIYUAN_ENV": env})


def test_an_unset_environment_is_development() -> None:
    environ = {k: v for k, v in PRODUCTION.items() if k != "HUIYUAN_ENV"}

    assert Config.from_env(environ).env == "development"


def test_validate_refuses_an_environment_set_in_code() -> None:
    with pytest.raises(ConfigError, match="HUIYUAN_ENV"):
        Config(env="prod").validate()


@pytest.mark.parametrize("variable", sorted(DEMO_SETTINGS))
def test_production_refuses_each_demo_wechat_value(variable: str) -> None:
    """Each of the demo appids, secrets and tokens left unset (so at its default) is refused."""
    environ = {k: v for k, v in PRODUCTION.items() if k != variable}

    with pytest.raises(ConfigError, match=variable):
        Config.from_env(environ)


@pytest.mark.parametrize("variable", sorted(DEMO_SETTINGS))
def test_production_refuses_a_demo_value_written_out(variable: str) -> None:
    default = getattr(Config, DEMO_SETTINGS[variable])

    with pytest.raises(ConfigError, match=variable):
        Config.from_env(PRODUCTION | {variable: default})


def test_development_runs_on_the_demo_values() -> None:
    config = Config.from_env({"HUIYUAN_ENV": "development"})

    assert config.wechat_mp_appid == "wx-demo-miniprogram"
    assert config.wechat_mp_secret == "demo-mp-secret"


@pytest.mark.parametrize("base", ["http://127.0.0.1:8200/", "https://wechat-proxy.internal/"])
def test_production_refuses_a_wechat_api_base(base: str) -> None:
    """WECHAT_API_BASE exists to reach the simulator: production calls WeChat itself."""
    with pytest.raises(ConfigError, match="WECHAT_API_BASE"):
        Config.from_env(PRODUCTION | {"WECHAT_API_BASE": base})


def test_secret_key_fallbacks_are_read_as_a_comma_separated_ring() -> None:
    old, older = "o" * 40, "p" * 40
    config = Config.from_env(PRODUCTION | {"SECRET_KEY_FALLBACKS": f" {older} ,{old},, "})

    assert config.secret_key_fallbacks == (older, old)
    assert config.secret_keys == (older, old, STRONG_SECRET)  # newest last: it signs


def test_no_fallbacks_by_default() -> None:
    config = Config.from_env({})

    assert config.secret_key_fallbacks == ()
    assert config.secret_keys == (DEV_SECRET_KEY,)


@pytest.mark.parametrize("weak", ["short", "y" * 31, DEV_SECRET_KEY])
def test_production_refuses_a_weak_fallback_key(weak: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS"):
        Config.from_env(PRODUCTION | {"SECRET_KEY_FALLBACKS": f"{'o' * 40},{weak}"})


def test_development_accepts_short_fallback_keys() -> None:
    config = Config.from_env({"SECRET_KEY_FALLBACKS": "old"})

    assert config.secret_keys == ("old", DEV_SECRET_KEY)


def test_operator_log_in_limits_and_the_simulation_lock_are_read() -> None:
    config = Config.from_env(
        {
            "ADMIN_LOGIN_LIMIT_PER_ACCOUNT": "3/minute",
            "ADMIN_LOGIN_LIMIT_PER_ADDRESS": "100/hour",
            "TIER_SIMULATION_LOCK_SECONDS": "30",
        }
    )
    assert (
        config.admin_login_limit_per_account,
        config.admin_login_limit_per_address,
        config.tier_simulation_lock_seconds,
    ) == ("3/minute", "100/hour", 30)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("ADMIN_LOGIN_LIMIT_PER_ACCOUNT", "five a minute"),
        ("ADMIN_LOGIN_LIMIT_PER_ADDRESS", "20"),
        ("TIER_SIMULATION_LOCK_SECONDS", "0"),
    ],
)
def test_a_bad_limit_or_lock_setting_refuses_to_start(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: raw})


def test_trusted_proxies_default_to_none() -> None:
    assert Config.from_env({}).trusted_proxies == ()


def test_trusted_proxies_are_comma_separated_addresses_and_networks() -> None:
    config = Config.from_env({"TRUSTED_PROXIES": " 10.0.0.1, 172.16.0.0/12 ,,::1"})
    assert config.trusted_proxies == ("10.0.0.1", "172.16.0.0/12", "::1")


@pytest.mark.parametrize("raw", ["proxy.local", "10.0.0.300", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_not_an_address_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Config.from_env({"TRUSTED_PROXIES": f"10.0.0.1,{raw}"})
