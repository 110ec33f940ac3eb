"""`flask --app wsgi wechat-sim --port PORT`: the local WeChat simulator."""

from __future__ import annotations

import click
from flask import Flask

from app.web.deps import container
from wechat_hooks.simulator import serve


def register_simulator_command(app: Flask) -> None:
    @app.cli.command("wechat-sim")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=8200, show_default=True, type=int, help="Port to listen on.")
    def wechat_sim(host: str, port: int) -> None:
        """Serve the WeChat and WeCom simulator for development and tests."""
        config = container().config
        apps = {
            config.wechat_mp_appid: config.wechat_mp_secret,
            config.wechat_oa_appid: config.wechat_oa_secret,
        }
        corps = {config.wecom_corp_id: config.wecom_secret}
        click.echo(f"WeChat simulator on http://{host}:{port}/")
        serve(host, port, apps=apps, corps=corps)
