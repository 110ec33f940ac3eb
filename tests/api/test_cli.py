"""The command line as people use it: help on every command and option, `show` for partners
and accounts, `jobs run` printing what the job did, errors as one line, and a warning before
Flask's development server talks to WeChat's real servers."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import FlaskGroup

from app import create_app
from app.partners import nonces
from jobs.runner import LOCK_PREFIX
from tests.support.cli import cli
from tests.support.config import make_config
from tests.support.http import ADMIN_PASSWORD
from tests.support.processes import free_port
from tests.support.signing import PartnerKeys, open_get

README = Path(__file__).resolve().parents[2] / "README.md"
LOOKUP = "/open/v1/members/lookup?card_no=000000000000"
NO_PARTNER = "No partner has that app key or id."
WEAK_PASSWORD = ("admins", "create", "--username", "ops-weak", "--password", "password1234",
                 "--role", "analyst")  # fmt: skip


def one_error_line(result: Result) -> str:
    """The failure as people see it: exit 1, nothing on stdout, one line on stderr."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def walk(command: click.Command, path: str = "") -> Iterator[tuple[str, click.Command]]:
    yield path or "(root)", command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, f"{path} {name}".strip())


def lacking_help(root: click.Command) -> list[str]:
    missing = []
    for path, command in walk(root):
        if command is not root and not (command.help or command.short_help):
            missing.append(path)
        missing += [
            f"{path} {'/'.join(param.opts)}"
            for param in command.params
            if isinstance(param, click.Option) and not param.help
        ]
    return missing


@pytest.fixture
def make_app(sim, database_url, engine, session_factory, redis):
    def make(**changes: Any) -> Flask:
        config = make_config(sim, database_url, **changes)
        return create_app(config, engine=engine, session_factory=session_factory, redis=redis)

    return make


class TestHelp:
    def test_every_command_and_option_of_the_app_has_help(self, app):
        commands = [path for path, _ in walk(app.cli)]
        assert {"partners show", "admins show", "jobs run", "wechat-sim"} <= set(commands)

        assert lacking_help(app.cli) == []

    def test_the_check_finds_a_command_or_option_without_help(self):
        @click.group()
        def root() -> None:
            """Root."""

        @root.command("quiet")
        @click.option("--loud", is_flag=True)
        def quiet(loud: bool) -> None:
            pass

        assert lacking_help(root) == ["quiet", "quiet --loud"]

    def test_the_readme_lists_every_command(self, app):
        text = README.read_text(encoding="utf-8")
        section = text[text.index("## Command line") :]
        section = section[: section.index("\n## ", 1)]
        listed = set(re.findall(r"^\| `([a-z][a-z-]*(?: [a-z][a-z-]*)*)", section, re.M))
        leaves = {path for path, command in walk(app.cli) if not isinstance(command, click.Group)}
        assert leaves - listed == set()
        assert listed - leaves <= {"run"}  # Flask's own development server, named for its warning


class TestShow:
    def test_a_partner_by_app_key_or_id_never_with_its_secret(self, app, client, make_partner):
        keys: PartnerKeys = make_partner("POS 上海", channels=["pos"], trusted=True)

        by_key = cli(app, "partners", "show", keys.app_key)

        assert by_key.exit_code == 0, by_key.output
        row = json.loads(by_key.stdout)
        assert set(row) == {
            "id",
            "name",
            "app_key",
            "active",
            "created_at",
            "channels",
            "trusted",
            "last_signed_request_at",
        }
        assert (row["name"], row["app_key"], row["active"]) == ("POS 上海", keys.app_key, True)
        assert (row["channels"], row["trusted"]) == (["pos"], True)
        assert row["last_signed_request_at"] is None  # no request yet
        assert keys.app_secret not in by_key.output
        by_id = cli(app, "partners", "show", str(row["id"]))
        assert json.loads(by_id.stdout) == row

    def test_a_partners_last_signed_request_is_shown(self, app, client, make_partner):
        keys = make_partner("POS")
        assert open_get(client, keys, LOOKUP, timestamp=1_900_000_000).status_code == 401
        assert open_get(client, keys, LOOKUP).status_code == 404  # accepted: no such card

        row = json.loads(cli(app, "partners", "show", keys.app_key).stdout)

        [listed] = [json.loads(line) for line in cli(app, "partners", "list").stdout.splitlines()]
        assert row["last_signed_request_at"] is not None
        assert {k: v for k, v in row.items() if k != "last_signed_request_at"} == listed

    def test_an_account_never_with_its_password_hash(self, app):
        made = cli(
            app, "admins", "create", "--username", "ops-shown", "--password", ADMIN_PASSWORD,
            "--role", "staff", "--wecom-userid", "zhangsan",
        )  # fmt: skip
        assert made.exit_code == 0, made.output

        shown = cli(app, "admins", "show", "ops-shown")

        assert shown.exit_code == 0, shown.output
        row = json.loads(shown.stdout)
        assert set(row) == {
            "username",
            "role",
            "active",
            "created_at",
            "last_login_at",
            "wecom_userid",
        }
        assert (row["username"], row["role"], row["active"]) == ("ops-shown", "staff", True)
        assert row["wecom_userid"] == "zhangsan"
        assert row["created_at"] and row["last_login_at"] is None
        assert "pbkdf2" not in shown.output and "scrypt" not in shown.output

    def test_the_shown_account_has_its_log_in(self, app, client):
        cli(
            app, "admins", "create", "--username", "ops-in", "--password", ADMIN_PASSWORD,
            "--role", "analyst",
        )  # fmt: skip
        login = {"username": "ops-in", "password": ADMIN_PASSWORD}
        assert client.post("/admin/v1/auth/login", json=login).status_code == 200

        row = json.loads(cli(app, "admins", "show", "ops-in").stdout)

        assert row["last_login_at"] is not None


class TestOneLineErrors:
    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (("partners", "show", "hk_nobody"), f"error: not_found: {NO_PARTNER}"),
            (("partners", "show", "999999"), f"error: not_found: {NO_PARTNER}"),
            (("partners", "disable", "hk_nobody"), "error: not_found:"),
            (("partners", "rotate", "hk_nobody"), "error: not_found:"),
            (("partners", "configure", "hk_nobody", "--trusted"), "error: not_found:"),
            (("admins", "show", "nobody"), "error: not_found: No such account. (field=username)"),
            (("admins", "disable", "nobody"), "error: not_found:"),
            (("admins", "reset-password", "nobody", "--password", "x"), "error: not_found:"),
            (WEAK_PASSWORD, "error: validation_error:"),
            (("partners", "create", "  "), "error: validation_error:"),
        ],
    )
    def test_a_domain_error_is_one_line_on_stderr(self, app, args, expected):
        line = one_error_line(cli(app, *args))

        assert line.startswith(expected)

    def test_a_bad_argument_is_clicks_usage_error(self, app):
        result = cli(app, "admins", "create", "--username", "ops-x", "--role", "owner")

        assert result.exit_code == 2
        assert "Invalid value for '--role'" in result.stderr
        assert "Traceback" not in result.output


class TestJobsRun:
    def test_it_prints_what_the_job_did(self, app, redis):
        window = app.extensions["huiyuan"].config.open_api_clock_skew_seconds
        now = int(time.time())
        for nonce, age in (("old", window + 60), ("new", 0)):
            nonces.claim_nonce(
                redis, app_key="hk_x", nonce=nonce, timestamp=now - age, window=window
            )

        result = cli(app, "jobs", "run", "nonces.purge")

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {
            "job": "nonces.purge",
            "outcome": "ok",
            "result": {"deleted": 1},
        }

    def test_a_failing_job_exits_1_with_one_line(self, make_app):
        app = make_app(wechat_api_base=f"http://127.0.0.1:{free_port()}/")  # nothing listens

        line = one_error_line(cli(app, "jobs", "run", "wechat_sim.purge"))

        assert line.startswith("error: job_failed: wechat_sim.purge: ConnectionError(")

    def test_a_job_another_process_runs_is_skipped(self, app, redis):
        redis.set(LOCK_PREFIX + "idempotency.purge", "elsewhere")

        result = cli(app, "jobs", "run", "idempotency.purge")

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {
            "job": "idempotency.purge",
            "outcome": "skipped",
            "result": None,
            "reason": "another process is running it",
        }

    def test_an_unknown_job_is_a_usage_error_naming_the_jobs(self, app):
        result = cli(app, "jobs", "run", "points.nothing")

        assert result.exit_code == 2
        assert "points.expire" in result.stderr and "Traceback" not in result.output


class TestFlaskRun:
    """`flask --app wsgi run`: Flask's own development server, not the local stack. Run here
    on a busy port, so that it stops right after loading the app."""

    @staticmethod
    def flask_run(make_app: Any, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> Result:
        monkeypatch.setenv("FLASK_RUN_FROM_CLI", "")  # FlaskGroup sets it; restored after
        group = FlaskGroup(
            create_app=lambda: make_app(**changes), load_dotenv=False, set_debug_flag=False
        )
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = str(busy.getsockname()[1])
            return CliRunner().invoke(group, ["run", "--host", "127.0.0.1", "--port", port])

    def test_it_warns_first_when_it_would_talk_to_wechats_real_servers(self, make_app, monkeypatch):
        result = self.flask_run(make_app, monkeypatch, wechat_api_base=None)

        assert result.exit_code == 1, result.output  # the port was busy: it stopped there
        assert "is in use" in result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith("warning: WECHAT_API_BASE is unset")
        assert "WeChat's real servers" in first and "make run" in first

    def test_it_does_not_warn_in_front_of_the_simulator(self, make_app, monkeypatch):
        result = self.flask_run(make_app, monkeypatch)  # the test config names the simulator

        assert result.exit_code == 1, result.output
        assert "is in use" in result.stderr
        assert "warning" not in result.output

    def test_other_commands_do_not_warn(self, make_app):
        result = cli(make_app(wechat_api_base=None), "jobs", "list")

        assert result.exit_code == 0
        assert "warning" not in result.output
