"""The admin API's reads: which role may read what, member search and detail with their
pagination, and the audit log.

The contract only: each answer's status and shape, roles, paging and query parsing. What
search, detail and the audit log contain is tested against the services in
tests/services/test_admin_member_views.py, test_admins.py and test_partners.py."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from app.members.models import Member
from tests.factories import MemberFactory, TierFactory
from tests.support.cli import cli
from tests.support.http import assert_envelope, bearer
from tests.support.signing import open_post

MEMBERS = "/admin/v1/members"
AUDIT = "/admin/v1/audit-log"
# The fields of a member as operators see it (AdminMemberSchema).
MEMBER_FIELDS = {
    "id", "card_no", "nickname", "avatar_url", "gender", "birthday", "city", "phone_masked",
    "registered_at", "status", "registration_channel", "registration_store", "merged_into_id",
}  # fmt: skip


@pytest.fixture
def admin(admin_token):
    return bearer(admin_token("admin"))


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
