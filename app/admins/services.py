"""Admin accounts: creation, disabling and password resets (audited), log-in (every
attempt audited with its source address), and reading the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app import clock
from app.admins import locks, rules
from app.admins.models import ROLES, ActorType, AdminUser, AuditEntry
from app.admins.operations import Actor, record_change
from app.admins.sessions import revoke_sessions_in
from app.db import newest_first
from app.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.uow import UnitOfWork

MIN_PASSWORD_LENGTH = rules.MIN_PASSWORD_LENGTH
# Checked when the username is unknown, so both paths cost one hash: no timing oracle.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def create_admin(
    *,
    uow: UnitOfWork,
    actor: Actor,
    username: str,
    password: str,
    role: str,
    wecom_userid: str | None = None,
) -> AdminUser:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    problem = rules.username_problem(username)
    if problem:
        raise ValidationFailed(problem, field="username")
    _check_password(password, username)
    with uow:
        admin = AdminUser(
            username=username,
            password_hash=generate_password_hash(password),
            role=role,
            wecom_userid=wecom_userid,
        )
        uow.session.add(admin)
        try:
            uow.session.flush()
        except IntegrityError:
            raise Conflict("That username is taken.", field="username") from None
        record_change(
            uow.session,
            actor=actor,
            action="admin.create",
            target_type="admin_user",
            target_id=admin.id,
            before=None,
            after={"username": username, "role": role, "wecom_userid": wecom_userid},
        )
        uow.commit()
        return admin


def _check_password(password: str, username: str) -> None:
    problem = rules.password_problem(password, username)
    if problem:
        raise ValidationFailed(problem, field="password")


def authenticate_admin(
    *, uow: UnitOfWork, username: str, password: str, address: str | None = None
) -> AdminUser:
    """The account, if the password is right and it is active. Every attempt is audited
    with the source ``address``; a success records the account's last log-in."""
    with uow:
        admin = uow.session.scalars(
            select(AdminUser).where(AdminUser.username == username)
        ).one_or_none()
        hashed = admin.password_hash if admin is not None else _DUMMY_HASH
        valid = check_password_hash(hashed, password)
        if admin is None or not valid or not admin.active:
            record_change(
                uow.session,
                actor=Actor(type=ActorType.ANONYMOUS, name="-"),
                action="admin.login_failed",
                target_type="admin_user",
                target_id=admin.id if admin is not None else None,
                before=None,
                after={
                    # What was typed, only when it could be a username (never a password
                    # pasted into the wrong field).
                    "username": username if rules.username_problem(username) is None else None,
                    "address": address,
                },
            )
            uow.commit()
            raise Unauthorized("Wrong username or password.")
        admin.last_login_at = clock.now()
        record_change(
            uow.session,
            actor=Actor(type=ActorType.ADMIN, name=admin.username, id=admin.id),
            action="admin.login",
            target_type="admin_user",
            target_id=admin.id,
            before=None,
            after={"address": address},
        )
        uow.commit()
        return admin


def list_admins(*, uow: UnitOfWork) -> list[AdminUser]:
    with uow:
        return list(uow.session.scalars(select(AdminUser).order_by(AdminUser.username)))


def show_admin(*, uow: UnitOfWork, username: str) -> AdminUser:
    """One account by username; NotFound when there is none."""
    with uow:
        return _by_username(uow, username, lock=False)


def _by_username(uow: UnitOfWork, username: str, *, lock: bool = True) -> AdminUser:
    if lock:
        admin = locks.lock_admin(uow.session, username)
    else:
        query = select(AdminUser).where(AdminUser.username == username)
        admin = uow.session.scalars(query).one_or_none()
    if admin is None:
        raise NotFound("No such account.", field="username")
    return admin


def disable_admin(*, uow: UnitOfWork, actor: Actor, username: str) -> AdminUser:
    """The account can no longer log in, and its tokens are refused from the next request
    (every request reads the account)."""
    with uow:
        admin = _by_username(uow, username)
        if admin.active:
            admin.active = False
            revoke_sessions_in(uow.session, admin_id=admin.id)
            record_change(
                uow.session,
                actor=actor,
                action="admin.disable",
                target_type="admin_user",
                target_id=admin.id,
                before={"active": True},
                after={"active": False},
            )
        uow.commit()
        return admin


def reset_password(*, uow: UnitOfWork, actor: Actor, username: str, password: str) -> AdminUser:
    """A new password under the same policy as creation; audited without the password. The
    account's sessions end: whoever held the old password is logged out."""
    with uow:
        admin = _by_username(uow, username)
        _check_password(password, admin.username)
        admin.password_hash = generate_password_hash(password)
        revoke_sessions_in(uow.session, admin_id=admin.id)
        record_change(
            uow.session,
            actor=actor,
            action="admin.reset_password",
            target_type="admin_user",
            target_id=admin.id,
            before=None,
            after=None,
        )
        uow.commit()
        return admin


def get_admin(*, uow: UnitOfWork, admin_id: int) -> AdminUser | None:
    with uow:
        admin = uow.session.get(AdminUser, admin_id)
        return admin if admin is not None and admin.active else None


def list_audit_log(
    *, uow: UnitOfWork, before_id: int | None, limit: int, target_type: str | None = None
) -> list[AuditEntry]:
    with uow:
        query = select(AuditEntry)
        if target_type:
            query = query.where(AuditEntry.target_type == target_type)
        page = newest_first(query, AuditEntry.id, before_id=before_id, limit=limit)
        return list(uow.session.scalars(page))
