"""The admin API: accounts from the CLI, log-in, roles, member search and detail,
pagination, and the audit log.

The contract only: each answer's status and shape, roles, paging and query parsing, the
log-in throttle, and what the account commands print. What search, detail and the audit log
contain is tested against the services in tests/services/test_admin_member_views.py and
tests/services/test_admins_partners.py."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from app.admins.models import AdminUser
from app.members.models import Member
from tests.factories import AdminFactory, MemberFactory, TierFactory
from tests.support.cli import cli
from tests.support.http import ADMIN_PASSWORD, CHEAP_HASH, assert_envelope, bearer
from tests.support.signing import PartnerKeys, open_get, open_post

MEMBERS = "/admin/v1/members"
AUDIT = "/admin/v1/audit-log"
# The fields of a member as operators see it (AdminMemberSchema).
MEMBER_FIELDS = {
    "id", "card_no", "nickname", "avatar_url", "gender", "birthday", "city", "phone_masked",
    "registered_at", "status", "registration_channel", "registration_store", "merged_into_id",
}  # fmt: skip


def admin_login(client, username: str, password: str):
    return client.post("/admin/v1/auth/login", json={"username": username, "password": password})


@pytest.fixture
def admin(admin_token):
    return bearer(admin_token("admin"))


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
        (tests/services/test_admins_partners.py) and printed as one line (test_cli.py)."""
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


class TestRoles:
    @pytest.mark.parametrize(
        ("role", "members", "audit"),
        [
            ("admin", 200, 200),
            ("operator", 200, 403),
            ("analyst", 200, 403),
            ("staff", 403, 403),
        ],
    )
    def test_who_may_read_what(self, client, admin_token, role, members, audit):
        headers = bearer(admin_token(role))
        for path, status in ((MEMBERS, members), (AUDIT, audit)):
            answer = client.get(path, headers=headers)
            if status == 403:
                assert_envelope(answer, 403, "forbidden")
            else:
                assert answer.status_code == 200, answer.get_json()

    @pytest.mark.parametrize("path", [MEMBERS, AUDIT, "/admin/v1/members/1", "/admin/v1/auth/me"])
    def test_no_or_a_foreign_token_is_401(self, client, login, path):
        member_token = login("o-admin-probe")["token"]
        assert_envelope(client.get(path), 401, "unauthorized")
        assert_envelope(client.get(path, headers=bearer(member_token)), 401, "unauthorized")


class TestMembers:
    def test_a_search_is_200_with_a_page_of_members_by_card_no_or_phone(
        self, client, admin, login, bind_phone
    ):
        target = login("o-admin-target")
        login("o-admin-bystander")
        bind_phone(target["token"], "13812348888")
        for query in (f"card_no={target['member']['card_no']}", "phone=13812348888"):
            answer = client.get(f"{MEMBERS}?{query}", headers=admin)

            assert answer.status_code == 200, answer.get_json()
            page = answer.get_json()
            assert set(page) == {"items", "next_cursor"}
            (found,) = page["items"]
            assert set(found) == MEMBER_FIELDS
            assert (found["id"], found["phone_masked"]) == (target["member"]["id"], "138****8888")
            assert (found["status"], found["merged_into_id"]) == ("active", None)
            assert page["next_cursor"] is None

    def test_limit_and_cursor_walk_every_member_once(self, client, admin, session):
        MemberFactory.create_batch(5)
        MemberFactory(status="merged")
        expected = list(
            session.scalars(
                select(Member.id).where(Member.status == "active").order_by(Member.id.desc())
            )
        )
        assert len(expected) >= 5
        seen: list[int] = []
        url = f"{MEMBERS}?limit=2"
        pages = 0
        while True:
            page = client.get(url, headers=admin).get_json()
            pages += 1
            assert len(page["items"]) <= 2
            seen += [m["id"] for m in page["items"]]
            if page["next_cursor"] is None:
                break
            assert page["items"], "a next cursor after an empty page"
            url = f"{MEMBERS}?limit=2&cursor={page['next_cursor']}"
            assert pages < 100
        assert seen == expected  # newest first, none twice, none missed
        assert pages == (len(expected) + 1) // 2

    def test_a_full_last_page_has_no_next_cursor(self, client, admin, session):
        MemberFactory.create_batch(4)
        total = len(session.scalars(select(Member.id).where(Member.status == "active")).all())
        page = client.get(f"{MEMBERS}?limit={total}", headers=admin).get_json()
        assert len(page["items"]) == total
        assert page["next_cursor"] is None

    def test_the_default_page_is_twenty(self, client, admin):
        MemberFactory.create_batch(21)
        page = client.get(MEMBERS, headers=admin).get_json()
        assert len(page["items"]) == 20
        assert page["next_cursor"] is not None

    @pytest.mark.parametrize(
        "query",
        [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=two",
            "limit=",
            "limit=%C2%B2",  # a superscript two: a digit to str.isdigit, not to int()
            "cursor=!!!",
            "cursor=" + base64.urlsafe_b64encode(b"v2:10").decode(),
            "cursor=" + base64.urlsafe_b64encode(b"v1:abc").decode(),
            "cursor=" + base64.urlsafe_b64encode(b"v1:" + b"9" * 30).decode(),
            "cursor=" + base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        ],
    )
    def test_bad_paging_arguments_are_422(self, client, admin, query):
        error = assert_envelope(
            client.get(f"{MEMBERS}?{query}", headers=admin), 422, "validation_error"
        )
        assert error["details"]["field"] in ("limit", "cursor")

    def test_the_limits_themselves_are_fine(self, client, admin):
        for limit in (1, 100):
            assert client.get(f"{MEMBERS}?limit={limit}", headers=admin).status_code == 200

    def test_an_unknown_filter_is_422(self, client, admin):
        error = assert_envelope(
            client.get(f"{MEMBERS}?tier=gold", headers=admin), 422, "validation_error"
        )
        assert "tier" in error["details"]["fields"]

    def test_detail_is_200_with_identities_merges_points_ledger_and_tiers(
        self, frozen, client, admin, login, bind_phone, partner, session
    ):
        """The order is paid at the till's frozen time: ``frozen`` comes first so that the
        operator's token is issued at that time too, not in what would be its future."""
        TierFactory(code="silver", name="银卡", rank=1, threshold=0, benefits={})
        TierFactory(code="gold", name="金卡", rank=2, threshold=10_000, benefits={})
        session.commit()
        holder = login("o-detail-holder", unionid="u-detail")
        loser = login("o-detail-loser")
        bind_phone(holder["token"], "13812347777")
        bind_phone(loser["token"], "13812347777")  # merged into the holder
        order = {
            "channel": "pos",
            "external_id": "pos-detail",
            "member": {"card_no": holder["member"]["card_no"]},
            "paid_at": "2026-05-04T09:30:00+08:00",
            "amount_cents": 12_345,
            "items": [{"sku": "SKU-1", "name": "拿铁", "quantity": 1, "amount_cents": 12_345}],
        }
        assert open_post(client, partner, "/open/v1/orders", order).status_code == 201

        answer = client.get(f"{MEMBERS}/{holder['member']['id']}", headers=admin)

        assert answer.status_code == 200, answer.get_json()
        detail = answer.get_json()
        assert set(detail) == {
            "member", "identities", "merges", "points", "ledger", "tier", "tier_history",
        }  # fmt: skip
        assert set(detail["member"]) == MEMBER_FIELDS
        assert detail["member"]["id"] == holder["member"]["id"]
        assert {tuple(sorted(i)) for i in detail["identities"]} == {
            ("app_id", "created_at", "external_id", "last_seen_at", "provider")
        }
        assert "session_key" not in answer.get_data(as_text=True)
        (merge,) = detail["merges"]
        assert set(merge) == {"from_member_id", "into_member_id", "reason", "moved", "created_at"}
        assert set(detail["points"]) == {"balance", "debt", "expiring"}
        assert {tuple(sorted(e)) for e in detail["points"]["expiring"]} == {
            ("expires_at", "points")
        }
        assert {tuple(sorted(e)) for e in detail["ledger"]} == {
            ("balance_after", "created_at", "delta", "id", "kind", "note", "reason",
             "reason_code")
        }  # fmt: skip
        assert detail["tier"] == {"code": "gold", "name": "金卡", "benefits": {}}
        assert {tuple(sorted(c)) for c in detail["tier_history"]} == {
            ("created_at", "from_code", "metric_value", "reason", "to_code")
        }

    @pytest.mark.parametrize("member_id", ["999999999", "9" * 30])
    def test_an_unknown_member_is_404(self, client, admin, member_id):
        assert_envelope(client.get(f"{MEMBERS}/{member_id}", headers=admin), 404, "not_found")


class TestAuditLog:
    def test_it_is_200_with_a_page_of_entries(self, app, client, admin):
        assert cli(app, "partners", "create", "Store POS").exit_code == 0

        answer = client.get(AUDIT, headers=admin)

        assert answer.status_code == 200, answer.get_json()
        page = answer.get_json()
        assert set(page) == {"items", "next_cursor"}
        newest = page["items"][0]
        assert newest == {
            "id": newest["id"],
            "actor_type": "cli",
            "actor_id": None,
            "actor_name": "cli",
            "action": "partner.create",
            "target_type": "partner",
            "target_id": newest["target_id"],
            "before": None,
            "after": newest["after"],
            "created_at": newest["created_at"],
        }
        assert isinstance(newest["id"], int)
        assert set(newest["after"]) == {"name", "app_key", "channels", "trusted"}

    def test_it_filters_by_target_type_and_pages(self, app, client, admin):
        for name in ("A", "B", "C"):
            assert cli(app, "partners", "create", name).exit_code == 0
        first = client.get(f"{AUDIT}?target_type=partner&limit=2", headers=admin).get_json()
        assert [e["after"]["name"] for e in first["items"]] == ["C", "B"]
        rest = client.get(
            f"{AUDIT}?target_type=partner&limit=2&cursor={first['next_cursor']}", headers=admin
        ).get_json()
        assert [e["after"]["name"] for e in rest["items"]] == ["A"]
        assert rest["next_cursor"] is None


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
