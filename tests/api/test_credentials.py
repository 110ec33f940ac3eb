"""Credentials can be withdrawn: partners listed, disabled and rotated from the CLI; the
SECRET_KEY key ring (old keys verify and decrypt, the newest signs and encrypts) and the
command that re-encrypts partner secrets under the newest key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from flask import Flask
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app import create_app
from app.partners.services import EPOCH_CHECK_SECONDS
from tests.support.cli import cli
from tests.support.config import make_config
from tests.support.http import assert_envelope, bearer, log_in
from tests.support.signing import PartnerKeys, open_get

OLD_KEY = "old-secret-key-0123456789-0123456789-abcdef"
NEW_KEY = "new-secret-key-9876543210-9876543210-fedcba"
LOOKUP = "/open/v1/members/lookup?card_no=000000000000"
# Within the bound plus what a loaded test machine may add.
BOUND = EPOCH_CHECK_SECONDS + 1.0


def lookup_status(app: Flask, keys: PartnerKeys) -> int:
    """A signed call: 404 (no such card) means the signature was accepted."""
    return int(open_get(app.test_client(), keys, LOOKUP).status_code)


def refused_after(app: Flask, keys: PartnerKeys, limit: float) -> float:
    """Seconds until a signed call of ``keys`` is refused (401); fails after ``limit``."""
    start = time.monotonic()
    while True:
        answer = open_get(app.test_client(), keys, LOOKUP)
        elapsed = time.monotonic() - start
        if answer.status_code == 401:
            assert answer.get_json()["error"]["code"] == "unauthorized"
            return elapsed
        assert answer.status_code == 404, answer.get_json()
        assert elapsed < limit, f"still accepted after {elapsed:.2f} s"
        time.sleep(0.05)


@pytest.fixture
def app_with(sim, database_url, engine, session_factory, redis) -> Callable[..., Flask]:
    """Another app (its own partner cache) on the same database and Redis."""

    def _make(secret_key: str, fallbacks: tuple[str, ...] = ()) -> Flask:
        config = make_config(
            sim, database_url, secret_key=secret_key, secret_key_fallbacks=fallbacks
        )
        return create_app(config, engine=engine, session_factory=session_factory, redis=redis)

    return _make


def created(app: Flask, name: str = "POS") -> PartnerKeys:
    result = cli(app, "partners", "create", name)
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    return PartnerKeys(made["app_key"], made["app_secret"])


class TestPartnersCommands:
    def test_list_shows_every_partner_and_never_a_secret(self, app):
        first, second = created(app, "POS 上海"), created(app, "ERP")

        result = cli(app, "partners", "list")

        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert [row["app_key"] for row in rows] == [first.app_key, second.app_key]
        assert set(rows[0]) == {
            "id",
            "name",
            "app_key",
            "active",
            "created_at",
            "channels",
            "trusted",
        }
        assert rows[0]["channels"] is None and rows[0]["trusted"] is False
        assert rows[0]["name"] == "POS 上海"
        assert all(row["active"] is True for row in rows)
        assert first.app_secret not in result.output
        assert second.app_secret not in result.output

    def test_disable_by_app_key_refuses_the_partner_within_the_bound(self, app):
        keys, other = created(app), created(app, "ERP")
        assert lookup_status(app, keys) == 404  # accepted, and now cached

        result = cli(app, "partners", "disable", keys.app_key)

        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["active"] is False
        assert refused_after(app, keys, BOUND) <= BOUND
        answer = open_get(app.test_client(), keys, LOOKUP)
        assert_envelope(answer, 401, "unauthorized")
        assert lookup_status(app, other) == 404
        listed = {
            row["app_key"]: row["active"]
            for row in map(json.loads, cli(app, "partners", "list").output.splitlines())
        }
        assert listed == {keys.app_key: False, other.app_key: True}

    def test_disable_by_id_is_audited(self, app, client, admin_token):
        keys = created(app)
        [row] = [json.loads(line) for line in cli(app, "partners", "list").output.splitlines()]

        assert cli(app, "partners", "disable", str(row["id"])).exit_code == 0
        again = cli(app, "partners", "disable", str(row["id"]))  # no change, no second entry

        assert again.exit_code == 0
        entries = client.get(
            "/admin/v1/audit-log?target_type=partner", headers=bearer(admin_token("admin"))
        ).get_json()["items"]
        [entry] = [e for e in entries if e["action"] == "partner.disable"]
        assert entry["target_id"] == str(row["id"])
        assert entry["before"] == {"app_key": keys.app_key, "active": True}
        assert entry["after"] == {"app_key": keys.app_key, "active": False}
        assert entry["actor_type"] == "cli"

    @pytest.mark.parametrize("command", ["disable", "rotate"])
    @pytest.mark.parametrize("ref", ["hk_nobody", "999999999", ""])
    def test_an_unknown_partner_is_an_error(self, app, command, ref):
        result = cli(app, "partners", command, ref)

        assert result.exit_code != 0
        assert "not_found" in result.output

    def test_rotate_prints_a_new_secret_and_the_old_one_stops_working(
        self, app, client, admin_token
    ):
        old = created(app)
        assert lookup_status(app, old) == 404

        result = cli(app, "partners", "rotate", old.app_key)

        assert result.exit_code == 0, result.output
        made = json.loads(result.output)
        new = PartnerKeys(made["app_key"], made["app_secret"])
        assert new.app_key == old.app_key
        assert new.app_secret != old.app_secret
        assert refused_after(app, old, BOUND) <= BOUND
        assert lookup_status(app, new) == 404
        raw = client.get(
            "/admin/v1/audit-log?target_type=partner", headers=bearer(admin_token("admin"))
        ).get_data(as_text=True)
        assert "partner.rotate_secret" in raw
        assert new.app_secret not in raw and old.app_secret not in raw


class TestKeyRing:
    def test_a_member_token_signed_with_the_old_key_verifies_after_rotation(self, app_with, sim):
        before = app_with(OLD_KEY)
        old_token = log_in(before.test_client(), sim, "o-rotation")["token"]

        after = app_with(NEW_KEY, (OLD_KEY,))
        client = after.test_client()
        assert client.get("/mp/v1/me", headers=bearer(old_token)).status_code == 200
        new_token = log_in(client, sim, "o-rotation")["token"]

        # The new key signs: the old key alone cannot verify the new token.
        salt = "huiyuan.mp-token.v1"
        assert URLSafeTimedSerializer(NEW_KEY, salt=salt).loads(new_token)["m"] > 0
        with pytest.raises(BadSignature):
            URLSafeTimedSerializer(OLD_KEY, salt=salt).loads(new_token)
        # Once the old key leaves the ring, its tokens are refused; the new ones are not.
        retired = app_with(NEW_KEY).test_client()
        assert_envelope(retired.get("/mp/v1/me", headers=bearer(old_token)), 401, "unauthorized")
        assert retired.get("/mp/v1/me", headers=bearer(new_token)).status_code == 200

    def test_an_operator_token_signed_with_the_old_key_verifies_after_rotation(
        self, app_with, admin_token, client
    ):
        # `client` is the app of the test settings: its key becomes the old key here.
        from tests.support.settings import SECRET_KEY

        token = admin_token("admin")
        after = app_with(NEW_KEY, (SECRET_KEY,)).test_client()

        assert after.get("/admin/v1/auth/me", headers=bearer(token)).status_code == 200
        assert_envelope(
            app_with(NEW_KEY).test_client().get("/admin/v1/auth/me", headers=bearer(token)),
            401,
            "unauthorized",
        )

    def test_a_card_qr_shown_before_the_rotation_is_accepted_at_the_till(self, app_with, sim):
        """The QR a member shows was signed a moment before the switch: the ring verifies it."""
        before = app_with(OLD_KEY)
        member = before.test_client()
        token = log_in(member, sim, "o-qr-rotation")["token"]
        card = member.get("/mp/v1/card", headers=bearer(token)).get_json()
        payload = card["qr_payload"]

        after = app_with(NEW_KEY, (OLD_KEY,))
        keys = created(after)
        found = open_get(after.test_client(), keys, f"/open/v1/members/lookup?qr_payload={payload}")
        assert found.status_code == 200, found.get_json()
        assert found.get_json()["member"]["card_no"] in payload
        # Once the old key leaves the ring, that payload is forged as far as the till knows.
        retired = open_get(
            app_with(NEW_KEY).test_client(), keys, f"/open/v1/members/lookup?qr_payload={payload}"
        )
        assert_envelope(retired, 422, "validation_error")

    def test_partner_secrets_survive_rotation_and_reencrypt_retires_the_old_key(self, app_with):
        before = app_with(OLD_KEY)
        keys, other = created(before), created(before, "ERP")
        assert lookup_status(before, keys) == 404

        rotated = app_with(NEW_KEY, (OLD_KEY,))
        assert lookup_status(rotated, keys) == 404  # decrypted with the old key
        assert lookup_status(app_with(NEW_KEY), keys) == 401  # not yet under the new key

        first = cli(rotated, "partners", "reencrypt")
        second = cli(rotated, "partners", "reencrypt")

        assert first.exit_code == 0, first.output
        assert json.loads(first.output) == {"partners": 2, "reencrypted": 2, "unreadable": []}
        assert json.loads(second.output) == {"partners": 2, "reencrypted": 0, "unreadable": []}
        retired = app_with(NEW_KEY)
        assert lookup_status(retired, keys) == 404
        assert lookup_status(retired, other) == 404
        assert lookup_status(app_with(OLD_KEY), keys) == 401  # the old key alone: no more

    def test_new_partners_are_encrypted_under_the_newest_key(self, app_with):
        keys = created(app_with(NEW_KEY, (OLD_KEY,)))

        assert lookup_status(app_with(NEW_KEY), keys) == 404
        assert lookup_status(app_with(OLD_KEY), keys) == 401

    def test_reencrypt_names_the_secrets_no_key_decrypts(self, app_with):
        lost = created(app_with(OLD_KEY))
        kept = created(app_with(NEW_KEY))

        result = cli(app_with(NEW_KEY), "partners", "reencrypt")

        assert result.exit_code != 0
        assert lost.app_key in result.output
        assert kept.app_key not in result.output.split("unreadable")[-1]
        report = json.loads(result.output.splitlines()[0])
        assert report == {"partners": 2, "reencrypted": 0, "unreadable": [lost.app_key]}
