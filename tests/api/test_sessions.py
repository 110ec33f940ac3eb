"""Sessions can be withdrawn: a member's logout, an operator revoking a member's sessions,
an operator's own logout and a disabled or revoked operator account."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.admins.models import AdminUser
from app.admins.sessions import revoke_admin_sessions
from tests.support.http import assert_envelope, bearer

LOGOUT = "/mp/v1/auth/logout"
ADMIN_LOGOUT = "/admin/v1/auth/logout"
AUDIT = "/admin/v1/audit-log"


def revoke_url(member_id: int) -> str:
    return f"/admin/v1/members/{member_id}/sessions/revoke"


def me_status(client, token: str) -> int:
    return int(client.get("/mp/v1/me", headers=bearer(token)).status_code)


class TestMemberLogout:
    def test_logout_ends_the_presented_token_only(self, client, login):
        phone = login("o-two-phones")
        tablet = login("o-two-phones")
        assert phone["member"]["id"] == tablet["member"]["id"]

        answer = client.post(LOGOUT, headers=bearer(phone["token"]))

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"logged_out": True}
        assert_envelope(
            client.get("/mp/v1/me", headers=bearer(phone["token"])), 401, "unauthorized"
        )
        assert_envelope(
            client.get("/mp/v1/card", headers=bearer(phone["token"])), 401, "unauthorized"
        )
        assert me_status(client, tablet["token"]) == 200

    def test_a_second_logout_with_the_same_token_is_401(self, client, login):
        token = login("o-twice")["token"]
        assert client.post(LOGOUT, headers=bearer(token)).status_code == 200

        assert_envelope(client.post(LOGOUT, headers=bearer(token)), 401, "unauthorized")

    def test_logging_in_again_gives_a_working_token(self, client, login):
        old = login("o-again")["token"]
        client.post(LOGOUT, headers=bearer(old))

        new = login("o-again")["token"]

        assert me_status(client, new) == 200
        assert me_status(client, old) == 401

    def test_logout_needs_a_token(self, client):
        assert_envelope(client.post(LOGOUT), 401, "unauthorized")

    def test_logout_names_no_one_else(self, client, login):
        """The body cannot point at another member: unknown fields are refused, and the
        other member's token keeps working."""
        alice, bob = login("o-alice-lo"), login("o-bob-lo")

        answer = client.post(
            LOGOUT, json={"member_id": bob["member"]["id"]}, headers=bearer(alice["token"])
        )

        assert_envelope(answer, 422, "validation_error")
        assert me_status(client, bob["token"]) == 200
        assert me_status(client, alice["token"]) == 200


class TestOperatorRevokesMemberSessions:
    def test_every_token_of_the_member_is_401_and_others_are_unaffected(
        self, client, login, admin_token
    ):
        first, second = login("o-stolen"), login("o-stolen")
        other = login("o-bystander")
        operator = bearer(admin_token("operator"))

        answer = client.post(revoke_url(first["member"]["id"]), headers=operator)

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"revoked_sessions": 2}
        assert me_status(client, first["token"]) == 401
        assert me_status(client, second["token"]) == 401
        assert me_status(client, other["token"]) == 200
        # The member can log in again afterwards.
        assert me_status(client, login("o-stolen")["token"]) == 200

    def test_it_is_audited(self, client, login, admin_token):
        member = login("o-audited")
        admin = bearer(admin_token("admin"))
        client.post(revoke_url(member["member"]["id"]), headers=admin)

        entries = client.get(f"{AUDIT}?target_type=member", headers=admin).get_json()["items"]

        [entry] = [e for e in entries if e["action"] == "member.sessions_revoke"]
        assert entry["target_id"] == str(member["member"]["id"])
        assert entry["after"] == {"revoked_sessions": 1}
        assert entry["actor_type"] == "admin"

    def test_sessions_of_a_member_merged_into_it_end_too(
        self, client, login, bind_phone, admin_token
    ):
        """A token of a merged-away member acts for the survivor: it is revoked with it."""
        holder = login("o-holder")
        assert bind_phone(holder["token"], "13700001111").status_code == 200
        newcomer = login("o-newcomer")
        merged = bind_phone(newcomer["token"], "13700001111")
        assert merged.status_code == 200, merged.get_json()
        survivor = merged.get_json()["id"]
        assert survivor != newcomer["member"]["id"]

        answer = client.post(revoke_url(survivor), headers=bearer(admin_token("operator")))

        assert answer.get_json() == {"revoked_sessions": 2}
        assert me_status(client, holder["token"]) == 401
        assert me_status(client, newcomer["token"]) == 401

    @pytest.mark.parametrize("role", ["analyst", "staff"])
    def test_read_only_and_staff_roles_are_403(self, client, login, admin_token, role):
        member = login(f"o-{role}-try")

        answer = client.post(revoke_url(member["member"]["id"]), headers=bearer(admin_token(role)))

        assert_envelope(answer, 403, "forbidden")
        assert me_status(client, member["token"]) == 200

    def test_a_member_cannot_revoke_another_member(self, client, login):
        alice, bob = login("o-alice-rv"), login("o-bob-rv")

        answer = client.post(revoke_url(bob["member"]["id"]), headers=bearer(alice["token"]))

        assert_envelope(answer, 401, "unauthorized")
        assert me_status(client, bob["token"]) == 200

    def test_without_a_token_it_is_401(self, client, login):
        member = login("o-anon-rv")

        assert_envelope(client.post(revoke_url(member["member"]["id"])), 401, "unauthorized")
        assert me_status(client, member["token"]) == 200

    def test_an_unknown_member_is_404(self, client, admin_token):
        answer = client.post(revoke_url(999_999_999), headers=bearer(admin_token("admin")))

        assert_envelope(answer, 404, "not_found")

    def test_a_body_is_refused(self, client, login, admin_token):
        member = login("o-body-rv")

        answer = client.post(
            revoke_url(member["member"]["id"]),
            json={"all": True},
            headers=bearer(admin_token("admin")),
        )

        assert_envelope(answer, 422, "validation_error")
        assert me_status(client, member["token"]) == 200


class TestOperatorSessions:
    def test_admin_logout_ends_that_token_only(self, client, admin_token):
        token = admin_token("operator")
        other = admin_token("operator")

        answer = client.post(ADMIN_LOGOUT, headers=bearer(token))

        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json() == {"logged_out": True}
        assert_envelope(client.get("/admin/v1/auth/me", headers=bearer(token)), 401, "unauthorized")
        assert client.get("/admin/v1/auth/me", headers=bearer(other)).status_code == 200

    def test_a_disabled_account_is_refused_at_once(self, client, session, admin_token):
        token = admin_token("admin")
        admin_id = client.get("/admin/v1/auth/me", headers=bearer(token)).get_json()["id"]

        session.execute(update(AdminUser).where(AdminUser.id == admin_id).values(active=False))
        session.commit()

        assert_envelope(client.get("/admin/v1/auth/me", headers=bearer(token)), 401, "unauthorized")

    def test_revoking_an_accounts_sessions_ends_all_its_tokens(self, client, deps, admin_token):
        token = admin_token("admin")
        admin_id = client.get("/admin/v1/auth/me", headers=bearer(token)).get_json()["id"]
        other = admin_token("admin")

        assert revoke_admin_sessions(uow=deps.uow(), admin_id=admin_id) == 1

        assert_envelope(client.get("/admin/v1/auth/me", headers=bearer(token)), 401, "unauthorized")
        assert client.get("/admin/v1/auth/me", headers=bearer(other)).status_code == 200

    def test_a_member_token_cannot_log_an_operator_out(self, client, login):
        assert_envelope(
            client.post(ADMIN_LOGOUT, headers=bearer(login("o-not-admin")["token"])),
            401,
            "unauthorized",
        )
