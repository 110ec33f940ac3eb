"""Config.from_env: defaults, URL normalisation, and what production refuses."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from app.config import DEV_SECRET_KEY, Config, ConfigError
from app.container import make_redis

STRONG_SECRET = "s" * 32
PRODUCTION = {
    "HUIYUAN_ENV": "production",
    "DATABASE_URL": "mysql://huiyuan:pw@db.internal:3306/huiyuan",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": STRONG_SECRET,
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


def test_trusted_proxies_default_to_none() -> None:
    assert Config.from_env({}).trusted_proxies == ()


def test_trusted_proxies_are_comma_separated_addresses_and_networks() -> None:
    config = Config.from_env({"TRUSTED_PROXIES": " 10.0.0.1, 172.16.0.0/12 ,,::1"})
    assert config.trusted_proxies == ("10.0.0.1", "172.16.0.0/12", "::1")


@pytest.mark.parametrize("raw", ["proxy.local", "10.0.0.300", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_not_an_address_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Config.from_env({"TRUSTED_PROXIES": f"10.0.0.1,{raw}"})
