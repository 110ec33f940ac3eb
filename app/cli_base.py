"""The building blocks of the app's CLI commands.

A command's DomainError prints as one line on stderr, ``error: <code>: <message>``, and
exits 1, never a traceback; usage errors are click's own (exit 2). Flask's development
server warns first when it would talk to WeChat's real servers.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, run_command

from app.container import Container
from app.errors import DomainError


class CommandError(click.ClickException):
    """One readable line on stderr, ``error: <message>``, and exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def domain_error_line(error: DomainError) -> str:
    details = " ".join(f"{key}={value}" for key, value in (error.details or {}).items())
    return f"{error.code}: {error.message}" + (f" ({details})" if details else "")


class Command(click.Command):
    """A command whose DomainError is reported as one line (CommandError), no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DomainError as error:
            raise CommandError(domain_error_line(error)) from error


class Group(AppGroup):
    """A command group (each command in an app context) whose commands are ``Command``s."""

    command_class = Command


def warn_under_flask_run(app: Flask) -> None:
    """Flask's development server (``flask run``) does not start the WeChat simulator: with
    WECHAT_API_BASE unset its WeChat calls go to WeChat's real servers. Say so first."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command is not run_command:
        return
    deps: Container = app.extensions["huiyuan"]
    if deps.config.wechat_api_base is None:
        click.echo(
            "warning: WECHAT_API_BASE is unset, so this server talks to WeChat's real servers;"
            " for the local stack with the WeChat simulator use `make run`",
            err=True,
        )
