"""Huiyuan: the backend of a brand's WeChat membership programme.

``create_app`` is the composition root: it builds the collaborators, plugs the WeChat
adapters into the domain's ports, fills the domain's plug-in points (``app.wiring``: merge
steps, tier metrics) and registers every blueprint and CLI command. Nothing runs at import
time, and only this module imports inside functions: the entry-point packages import
``app``, so importing them at the top would cycle.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from app import clock
from app.caching import ConfigCache
from app.config import Config
from app.container import Container, make_redis
from app.db import Timeouts, make_engine, make_session_factory
from app.web.jsonbody import MAX_BODY_BYTES
from app.wiring import CONFIG_MODELS, wire_domain


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    """Build the app. ``overrides`` replace collaborators (engine, session_factory,
    redis, mp_auth): tests use them to share a connection or a Redis."""
    config = config or Config.from_env()
    wire_domain()
    clock.configure(config.timezone)
    app = Flask("huiyuan")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["huiyuan"] = _build_container(config, overrides)
    _register_web(app, config)
    _register_cli(app)
    return app


def _build_container(config: Config, overrides: dict[str, Any]) -> Container:
    engine = overrides.get("engine") or make_engine(
        config.database_url,
        Timeouts(
            connect=config.database_connect_timeout,
            read=config.database_read_timeout,
            write=config.database_write_timeout,
            pool=config.database_pool_timeout,
        ),
    )
    redis = overrides.get("redis") or make_redis(config)
    messenger = overrides.get("messenger") or _messenger(config, redis)
    return Container(
        config=config,
        engine=engine,
        session_factory=overrides.get("session_factory")
        or ConfigCache(redis, CONFIG_MODELS).install(make_session_factory(engine)),
        redis=redis,
        mp_auth=overrides.get("mp_auth") or _miniprogram_adapter(config, redis),
        messenger=messenger,
        outbox_handlers=_outbox_handlers(config, messenger),
    )


def _messenger(config: Config, redis: Any) -> Any:
    from app.messaging.adapters import NullMessenger
    from app.messaging.ports import NoticeKind
    from wechat_hooks.messenger import WeChatMessenger

    if config.messenger == "null":
        return NullMessenger()
    client = _mp_client(config, redis)
    templates = {NoticeKind.POINTS_EXPIRING: config.wechat_template_points_expiring}
    return WeChatMessenger(client, templates)


def _outbox_handlers(config: Config, messenger: Any) -> tuple[Any, ...]:
    """Every subscriber to the outbox's events; add a context's handler here."""
    from app.messaging.handlers import expiry_reminder_handler
    from app.timeline.handlers import TIMELINE_HANDLER

    return (TIMELINE_HANDLER, expiry_reminder_handler(messenger, mp_appid=config.wechat_mp_appid))


def _mp_client(config: Config, redis: Any) -> Any:
    """The mini-program's WeChat client; its access token is shared through Redis."""
    from wechat_hooks.clients import make_wechat_client

    return make_wechat_client(
        config.wechat_mp_appid,
        config.wechat_mp_secret,
        api_base=config.wechat_api_base,
        redis=redis,
        key_prefix="wechat:mp",
    )


def _miniprogram_adapter(config: Config, redis: Any) -> Any:
    from wechat_hooks.miniprogram import WeChatMiniProgramAuth

    return WeChatMiniProgramAuth(_mp_client(config, redis))


def _register_web(app: Flask, config: Config) -> None:
    from admin_api import bp as admin_bp
    from app.web.docs import bp as docs_bp
    from app.web.edge import install_edge
    from app.web.errors import register_error_handlers
    from app.web.health import bp as health_bp
    from app.web.logs import configure_logging, install_request_ids
    from miniprogram_api import bp as mp_bp
    from open_api import bp as open_bp

    configure_logging(json_lines=config.log_json)
    install_request_ids(app)
    install_edge(app, trusted_proxies=config.trusted_proxies)
    register_error_handlers(app)
    for blueprint in (health_bp, docs_bp, mp_bp, open_bp, admin_bp):
        app.register_blueprint(blueprint)


def _register_cli(app: Flask) -> None:
    from app.cli import register_commands
    from jobs.cli import register_job_commands
    from wechat_hooks.cli import register_simulator_command

    register_commands(app)
    register_job_commands(app)
    register_simulator_command(app)
