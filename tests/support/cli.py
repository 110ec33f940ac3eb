"""The app's command line, invoked as ``flask --app wsgi ...`` would."""

from __future__ import annotations

from typing import Any

from click.testing import Result
from flask import Flask


def cli(app: Flask, *args: str, **kw: Any) -> Result:
    """Run one command. ``flask`` (FlaskGroup) pushes an app context for every command;
    the test runner invokes app.cli directly, so it is pushed here as the real CLI would."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args), **kw)


def cli_output(app: Flask, *args: str) -> str:
    """The output of a command that must succeed."""
    result = cli(app, *args)
    assert result.exit_code == 0, result.output
    return str(result.output)
