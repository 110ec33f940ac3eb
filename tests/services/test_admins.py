"""Admin accounts: created with an audit entry that holds no password, named by a policy
and given a password hard to guess; log-ins audited with the source address; disabled
accounts and reset passwords refused at once; the audit log as operators read it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from app.admins import services as admins
from app.admins.models import AdminUser, AuditEntry
from app.admins.operations import CLI, Actor
from app.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.partners import services as partners
from app.uow import UnitOfWork
from tests.factories import AdminFactory
from tests.support.audit import audit_entries
from tests.support.rows import NewRows, reload
from tests.support.settings import SECRET_KEY

PASSWORD = "correct horse battery"


def _create(uow: UnitOfWork, username: str = "ops-li", **kw: object) -> AdminUser:
    args: dict[str, object] = {"actor": CLI, "password": PASSWORD, "role": "operator"} | kw
    return admins.create_admin(uow=uow, username=username, **args)  # type: ignore[arg-type]


# admins


def test_create_admin_stores_a_hash_and_writes_the_audit_log(
    uow: UnitOfWork, session: Session
) -> None:
    admin = _create(uow, "ops-li", role="staff", wecom_userid="LiLei")

    stored = reload(session, AdminUser, admin.id)
    assert (stored.username, stored.role, stored.wecom_userid, stored.active) == (
        "ops-li",
        "staff",
        "LiLei",
        True,
    )
    assert PASSWORD not in stored.password_hash
    (entry,) = audit_entries(session, "admin.create")
    assert (entry.actor_type, entry.actor_name, entry.actor_id) == ("cli", "cli", None)
    assert (entry.target_type, entry.target_id) == ("admin_user", str(admin.id))
    assert entry.before is None
    assert entry.after == {"username": "ops-li", "role": "staff", "wecom_userid": "LiLei"}
    logged = json.dumps([entry.before, entry.after], ensure_ascii=False)
    assert PASSWORD not in logged
    assert stored.password_hash not in logged
    assert "password" not in logged


def test_the_audit_log_names_an_admin_actor(uow: UnitOfWork, session: Session) -> None:
    root = AdminFactory(username="root")

    _create(uow, actor=Actor(type="admin", name="root", id=root.id))

    (entry,) = audit_entries(session, "admin.create")
    assert (entry.actor_type, entry.actor_name, entry.actor_id) == ("admin", "root", root.id)


def test_a_duplicate_username_is_a_conflict_and_audits_nothing(
    uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    _create(uow, "ops-li")

    with pytest.raises(Conflict) as caught:
        _create(uow, "ops-li", role="admin", password="another password")

    assert caught.value.details == {"field": "username"}
    assert rows.added(AdminUser) == 1
    assert len(audit_entries(session, "admin.create")) == 1
    # The failed attempt left the session usable: the next creation works.
    assert _create(uow, "ops-wang").username == "ops-wang"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"role": "superuser"}, "role"),
        ({"role": "Admin"}, "role"),
        ({"password": "short"}, "password"),
        ({"password": "1234567"}, "password"),
        ({"password": "Tq7#mZ2!pL9"}, "password"),  # 11 characters, however random
        ({"password": "password1234"}, "password"),  # a common password
        ({"password": "qwertyuiop123"}, "password"),  # a keyboard walk
        ({"password": "aaaaaaaaaaaaaaaa"}, "password"),
        ({"password": "harbour OPS-LI lantern"}, "password"),  # contains the username
        ({"username": "   "}, "username"),
        ({"username": "Ops-Li"}, "username"),
        ({"username": "pw"}, "username"),
        ({"username": "ops li"}, "username"),
        ({"username": "ops@li"}, "username"),
        ({"username": "-ops"}, "username"),
        ({"username": "运营小李"}, "username"),
        ({"username": "o" * 33}, "username"),
    ],
)
def test_bad_admin_input_is_a_validation_error(
    uow: UnitOfWork, session: Session, kw: dict[str, str], field: str, rows: NewRows
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _create(uow, **kw)

    assert caught.value.details == {"field": field}
    assert rows.added(AdminUser) == 0
    assert rows.added(AuditEntry) == 0


def test_a_twelve_character_password_that_is_hard_to_guess_is_enough(uow: UnitOfWork) -> None:
    assert _create(uow, password="Tq7#mZ2!pL9x").role == "operator"


def test_log_ins_are_audited_with_the_source_address(uow: UnitOfWork, session: Session) -> None:
    admin = _create(uow, "ops-li")

    admins.authenticate_admin(uow=uow, username="ops-li", password=PASSWORD, address="10.0.0.7")
    for username in ("ops-li", "nobody", "correct horse battery"):
        with pytest.raises(Unauthorized):
            admins.authenticate_admin(
                uow=uow, username=username, password="wrong guess", address="10.0.0.8"
            )

    (ok,) = audit_entries(session, "admin.login")
    assert (ok.actor_type, ok.actor_name, ok.actor_id) == ("admin", "ops-li", admin.id)
    assert (ok.target_id, ok.after) == (str(admin.id), {"address": "10.0.0.7"})
    assert reload(session, AdminUser, admin.id).last_login_at is not None
    failed = audit_entries(session, "admin.login_failed")
    assert [(e.target_id, e.after) for e in failed] == [
        (str(admin.id), {"username": "ops-li", "address": "10.0.0.8"}),
        (None, {"username": "nobody", "address": "10.0.0.8"}),
        # Not a possible username (perhaps a password typed in the wrong field): not kept.
        (None, {"username": None, "address": "10.0.0.8"}),
    ]
    assert all(e.actor_type == "anonymous" for e in failed)
    assert "wrong guess" not in json.dumps([e.after for e in failed])


def test_a_disabled_account_is_refused_at_once_and_the_change_audited(
    uow: UnitOfWork, session: Session
) -> None:
    admin = _create(uow, "ops-li")

    admins.disable_admin(uow=uow, actor=CLI, username="ops-li")

    assert admins.get_admin(uow=uow, admin_id=admin.id) is None
    with pytest.raises(Unauthorized):
        admins.authenticate_admin(uow=uow, username="ops-li", password=PASSWORD)
    (entry,) = audit_entries(session, "admin.disable")
    assert (entry.before, entry.after) == ({"active": True}, {"active": False})
    with pytest.raises(NotFound):
        admins.disable_admin(uow=uow, actor=CLI, username="nobody")


def test_a_password_reset_follows_the_policy_and_replaces_the_old_one(
    uow: UnitOfWork, session: Session
) -> None:
    _create(uow, "ops-li")
    with pytest.raises(ValidationFailed) as caught:
        admins.reset_password(uow=uow, actor=CLI, username="ops-li", password="password1234")
    assert caught.value.details == {"field": "password"}

    admins.reset_password(uow=uow, actor=CLI, username="ops-li", password="Vermilion-Kite-2031")

    with pytest.raises(Unauthorized):
        admins.authenticate_admin(uow=uow, username="ops-li", password=PASSWORD)
    assert admins.authenticate_admin(uow=uow, username="ops-li", password="Vermilion-Kite-2031")
    (entry,) = audit_entries(session, "admin.reset_password")
    assert (entry.actor_type, entry.before, entry.after) == ("cli", None, None)


def test_authenticate_admin_with_the_right_password(uow: UnitOfWork) -> None:
    admin = _create(uow, "ops-li")

    assert admins.authenticate_admin(uow=uow, username="ops-li", password=PASSWORD).id == admin.id


def test_authenticate_admin_refuses_wrong_credentials_alike(uow: UnitOfWork) -> None:
    _create(uow, "ops-li")
    wrong = [
        ("ops-li", "wrong password"),
        ("ops-li", PASSWORD.upper()),
        ("ops-li", ""),
        ("OPS-LI", PASSWORD),
        ("nobody", PASSWORD),
    ]

    for username, password in wrong:
        with pytest.raises(Unauthorized) as caught:
            admins.authenticate_admin(uow=uow, username=username, password=password)
        assert caught.value.message == "Wrong username or password.", (username, password)


def test_a_disabled_admin_cannot_log_in(uow: UnitOfWork, session: Session) -> None:
    admin = _create(uow, "ops-li")
    reload(session, AdminUser, admin.id).active = False
    session.flush()

    with pytest.raises(Unauthorized):
        admins.authenticate_admin(uow=uow, username="ops-li", password=PASSWORD)
    assert admins.get_admin(uow=uow, admin_id=admin.id) is None


# the audit log


def test_the_audit_log_lists_newest_first_and_filters_by_target_type(uow: UnitOfWork) -> None:
    _create(uow, "ops-li")
    for name in ("A", "B", "C"):
        partners.create_partner(uow=uow, actor=CLI, name=name, secret_key=SECRET_KEY)

    newest = admins.list_audit_log(uow=uow, before_id=None, limit=4)
    first = admins.list_audit_log(uow=uow, before_id=None, limit=2, target_type="partner")
    rest = admins.list_audit_log(uow=uow, before_id=first[-1].id, limit=1, target_type="partner")

    assert [entry.action for entry in newest] == ["partner.create"] * 3 + ["admin.create"]
    assert [entry.id for entry in newest] == sorted((entry.id for entry in newest), reverse=True)
    assert [entry.after["name"] for entry in first + rest] == ["C", "B", "A"]
