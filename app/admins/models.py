from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default


class Role(StrEnum):
    """An operator's role (``admin_users.role``); each endpoint names the roles it admits."""

    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    STAFF = "staff"


ROLES = tuple(role.value for role in Role)


class ActorType(StrEnum):
    """Who made a change the audit log records (``audit_log.actor_type``)."""

    ADMIN = "admin"
    CLI = "cli"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"  # a failed log-in


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(BinaryString(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # a Role
    # The WeCom userid of a staff member: staff see only their own customers.
    wecom_userid: Mapped[str | None] = mapped_column(BinaryString(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)


class AdminSession(Base):
    """One operator log-in. The admin token names it; a revoked session's tokens are refused
    (logout, or ``revoke_admin_sessions`` when the account is disabled or its password reset)."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    admin_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = table_args(
        Index("ix_admin_sessions_admin_id", "admin_id"),
        Index("ix_admin_sessions_created_at", "created_at"),
    )


class AuditEntry(Base):
    """Who changed what, with the state before and after. Never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor_type: Mapped[str] = mapped_column(String(16))  # an ActorType
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(Index("ix_audit_log_target", "target_type", "target_id"))
