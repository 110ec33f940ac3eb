"""Admin accounts: creation (audited), login, and reading the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.admins.models import ROLES, AdminUser, AuditEntry
from app.admins.operations import Actor, record_change
from app.errors import Conflict, Unauthorized, ValidationFailed
from app.uow import UnitOfWork

MIN_PASSWORD_LENGTH = 8
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
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("password must be at least 8 characters", field="password")
    if not username.strip():
        raise ValidationFailed("username is required", field="username")
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


def authenticate_admin(*, uow: UnitOfWork, username: str, password: str) -> AdminUser:
    with uow:
        admin = uow.session.scalars(
            select(AdminUser).where(AdminUser.username == username)
        ).one_or_none()
        hashed = admin.password_hash if admin is not None else _DUMMY_HASH
        valid = check_password_hash(hashed, password)
        if admin is None or not valid or not admin.active:
            raise Unauthorized("Wrong username or password.")
        return admin


def get_admin(*, uow: UnitOfWork, admin_id: int) -> AdminUser | None:
    with uow:
        admin = uow.session.get(AdminUser, admin_id)
        return admin if admin is not None and admin.active else None


def list_audit_log(
    *, uow: UnitOfWork, before_id: int | None, limit: int, target_type: str | None = None
) -> list[AuditEntry]:
    with uow:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        if target_type:
            query = query.where(AuditEntry.target_type == target_type)
        return list(uow.session.scalars(query))
