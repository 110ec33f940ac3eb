"""The admin API's accounts: made, listed, disabled and reset from the CLI; log-in and
/auth/me; the log-in throttle; and the credentials `partners create` prints.

The contract only: each answer's status and shape, the log-in throttle, and what the
account commands print. Password policy, roles and the audit trail of accounts are tested
against the services in tests/services/test_admins.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.admins.models import AdminUser
from tests.factories import AdminFactory
from tests.support.cli import cli
from tests.support.http import ADMIN_PASSWORD, CHEAP_HASH, assert_envelope, bearer
from tests.support.signing import PartnerKeys, open_get


def admin_login(client, username: str, password: str):
    return client.post("/admin/v1/auth/login", json={"username": username, "password": password})


class TestAccounts:
    def test_the_cli_creates_an_admin_who_can_log_in(self, app, client):
        result = cli(
            app, "admins", "create", "--username", "ops-lead", "--password", ADMIN_PASSWORD,
            "--role", "operator",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        made = json.loads(result.output)
        assert (made["username"], made["role"]) == ("ops-lead", "operator")
        assert ADMIN_PASSWORD not in result.output
        answer = admin_login(client, "ops-lead", ADMIN_PASSWORD)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["role"] == "operator"

    def test_the_cli_refuses_an_account_without_a_password(self, app, session):
        """Password policy, roles and taken names are refused by the service
        (tests/services/test_admins.py) and printed as one line (test_cli.py)."""
        result = cli(app, "admins", "create", "--username", "bad", "--role", "admin")
        assert result.exit_code != 0
        assert session.scalars(select(AdminUser).where(AdminUser.username == "bad")).all() == []

    def test_a_wrong_password_is_401(self, app, client):
        cli(
            app,
            "admins",
            "create",
            "--username",
            "pw-user",
            "--password",
            ADMIN_PASSWORD,
            "--role",
            "admin",
        )
        wrong = assert_envelope(
            admin_login(client, "pw-user", ADMIN_PASSWORD + "!"), 401, "unauthorized"
        )
        unknown = assert_envelope(
            admin_login(client, "nobody", ADMIN_PASSWORD), 401, "unauthorized"
        )
        assert wrong["message"] == unknown["message"]  # no hint which one was wrong

    def test_a_login_body_is_checked(self, client):
        assert_envelope(
            client.post("/admin/v1/auth/login", json={"username": "x"}), 422, "validation_error"
        )


class TestLogin:
    @pytest.fixture
    def account(self, session) -> AdminUser:
        made = AdminFactory(username="ops-shape", role="analyst", password_hash=CHEAP_HASH)
        session.commit()
        return made

    def test_a_log_in_is_200_with_the_token_its_lifetime_and_the_role(self, client, account):
        answer = admin_login(client, "ops-shape", ADMIN_PASSWORD)

        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        assert set(body) == {"token", "expires_in", "role"}
        assert isinstance(body["token"], str) and body["token"]
        assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
        assert body["role"] == "analyst"

    def test_me_is_200_with_the_signed_in_account(self, client, account):
        token = admin_login(client, "ops-shape", ADMIN_PASSWORD).get_json()["token"]

        answer = client.get("/admin/v1/auth/me", headers=bearer(token))

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"id": account.id, "username": "ops-shape", "role": "analyst"}


class TestPartnersCli:
    def test_it_prints_working_credentials_as_json(self, app, client, login):
        result = cli(app, "partners", "create", "Tmall")
        assert result.exit_code == 0, result.output
        printed = json.loads(result.output)
        assert set(printed) == {"app_key", "app_secret"}
        keys = PartnerKeys(printed["app_key"], printed["app_secret"])
        card_no = login("o-cli-partner")["member"]["card_no"]
        answer = open_get(client, keys, f"/open/v1/members/lookup?card_no={card_no}")
        assert answer.status_code == 200, answer.get_json()


class TestLoginThrottle:
    """Attempts per account (5/minute) and per source address (20/minute), over the
    app's Redis; over either, 429 rate_limited with Retry-After, password unchecked."""

    @pytest.fixture
    def account(self, session):
        AdminFactory(username="ops-throttled", role="operator", password_hash=CHEAP_HASH)
        session.commit()
        return "ops-throttled"

    @staticmethod
    def attempt(client, username, password, address="10.1.1.1"):
        return client.post(
            "/admin/v1/auth/login",
            json={"username": username, "password": password},
            environ_base={"REMOTE_ADDR": address},
        )

    def test_the_sixth_attempt_on_an_account_is_429_with_retry_after(
        self, client, account, time_machine
    ):
        time_machine.move_to("2026-05-04T02:00:00Z", tick=False)
        for _ in range(5):
            assert_envelope(self.attempt(client, account, "wrong guess"), 401, "unauthorized")

        refused = self.attempt(client, account, ADMIN_PASSWORD)  # even the right password
        assert_envelope(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # From another address too: the limit is the account's.
        other = self.attempt(client, account, ADMIN_PASSWORD, address="10.9.9.9")
        assert_envelope(other, 429, "rate_limited")

        time_machine.shift(61)
        assert self.attempt(client, account, ADMIN_PASSWORD).status_code == 200

    def test_a_successful_log_in_starts_the_accounts_count_again(self, client, account):
        for _ in range(4):
            assert self.attempt(client, account, "wrong guess").status_code == 401
        assert self.attempt(client, account, ADMIN_PASSWORD).status_code == 200
        for _ in range(4):
            assert self.attempt(client, account, "wrong guess").status_code == 401
        assert self.attempt(client, account, ADMIN_PASSWORD).status_code == 200

    def test_one_address_trying_many_accounts_is_429_after_twenty(self, client, account):
        for index in range(20):
            answer = self.attempt(client, f"guess-{index}", "wrong guess", address="10.2.2.2")
            assert answer.status_code == 401
        refused = self.attempt(client, account, ADMIN_PASSWORD, address="10.2.2.2")
        assert_envelope(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
        # Another address is not affected.
        assert self.attempt(client, account, ADMIN_PASSWORD, address="10.3.3.3").status_code == 200


class TestAccountCommands:
    def test_create_prompts_for_the_password_hidden_and_twice(self, app, client):
        with app.app_context():
            result = app.test_cli_runner().invoke(
                args=["admins", "create", "--username", "ops-prompted", "--role", "analyst"],
                input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n",
            )
        assert result.exit_code == 0, result.output
        assert ADMIN_PASSWORD not in result.output  # hidden input is not echoed
        assert "Repeat for confirmation" in result.output
        assert admin_login(client, "ops-prompted", ADMIN_PASSWORD).status_code == 200

    def test_create_refuses_a_confirmation_that_differs(self, app, session):
        with app.app_context():
            result = app.test_cli_runner().invoke(
                args=["admins", "create", "--username", "ops-typo", "--role", "analyst"],
                input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}x\n",
            )
        assert result.exit_code != 0
        assert (
            session.scalars(select(AdminUser).where(AdminUser.username == "ops-typo")).all() == []
        )

    def test_list_disable_and_reset_password(self, app, client):
        for name in ("ops-a", "ops-b"):
            made = cli(
                app, "admins", "create", "--username", name, "--password", ADMIN_PASSWORD,
                "--role", "operator",
            )  # fmt: skip
            assert made.exit_code == 0, made.output
        token = admin_login(client, "ops-a", ADMIN_PASSWORD).get_json()["token"]
        assert client.get("/admin/v1/auth/me", headers=bearer(token)).status_code == 200

        listed = [json.loads(line) for line in cli(app, "admins", "list").output.splitlines()]
        by_name = {row["username"]: row for row in listed}
        assert by_name["ops-a"]["active"] is True and by_name["ops-a"]["role"] == "operator"
        assert by_name["ops-a"]["last_login_at"] is not None
        assert by_name["ops-b"]["last_login_at"] is None

        assert cli(app, "admins", "disable", "ops-a").exit_code == 0
        # The token it already holds is refused at once, and it cannot log in again.
        me = client.get("/admin/v1/auth/me", headers=bearer(token))
        assert_envelope(me, 401, "unauthorized")
        assert admin_login(client, "ops-a", ADMIN_PASSWORD).status_code == 401
        listed = [json.loads(line) for line in cli(app, "admins", "list").output.splitlines()]
        assert {row["username"]: row["active"] for row in listed}["ops-a"] is False
        missing = cli(app, "admins", "disable", "nobody")
        assert missing.exit_code != 0 and "not_found" in missing.output

        before_reset = admin_login(client, "ops-b", ADMIN_PASSWORD).get_json()["token"]
        assert client.get("/admin/v1/auth/me", headers=bearer(before_reset)).status_code == 200
        new = "Vermilion-Kite-2031"
        with app.app_context():
            reset = app.test_cli_runner().invoke(
                args=["admins", "reset-password", "ops-b"], input=f"{new}\n{new}\n"
            )
        assert reset.exit_code == 0, reset.output
        assert new not in reset.output
        # Whoever held the old password is logged out with it.
        assert_envelope(
            client.get("/admin/v1/auth/me", headers=bearer(before_reset)), 401, "unauthorized"
        )
        assert admin_login(client, "ops-b", ADMIN_PASSWORD).status_code == 401
        assert admin_login(client, "ops-b", new).status_code == 200
