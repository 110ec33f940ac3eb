from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default


class EntryKind(StrEnum):
    """What a ledger entry does to the balance (``points_entries.kind``)."""

    EARN = "earn"
    SPEND = "spend"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REVERSE = "reverse"


class ReminderStatus(StrEnum):
    """Where an expiry reminder stands (``points_expiry_reminders.status``)."""

    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"  # nothing could be sent (no openid, the member declined)


class PointsAccount(Base):
    """The hot row: every change to a member's points locks it first (SELECT ... FOR UPDATE).

    ``debt`` is what a refund could not take back because the points were already spent;
    later earnings settle it before they count.
    """

    __tablename__ = "points_accounts"

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow_column_default, onupdate=utcnow_column_default
    )


class PointsEntry(Base):
    """One immutable change with the balance after it. The entries sum to the balance."""

    __tablename__ = "points_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    delta: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    # A stable code (rules.REASON_TEXTS) and the text the member reads for it.
    reason_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(255))
    # Detail for operators only (an adjustment's stated reason, the order's reference).
    note: Mapped[str | None] = mapped_column(String(255))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # Retries of the same spend or earn find this and change nothing.
    idempotency_key: Mapped[str | None] = mapped_column(BinaryString(160), unique=True)
    # A till spend's request fingerprint: the entry is that request's record (app.external_ids).
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(
        Index("ix_points_entries_member_id_id", "member_id", "id"),
        Index("ix_points_entries_member_kind_created", "member_id", "kind", "created_at"),
    )


class PointsLot(Base):
    """Points from one earning, with their expiry; spends take from the soonest to expire."""

    __tablename__ = "points_lots"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("points_entries.id"))
    order_id: Mapped[int | None] = mapped_column(BigId)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    # What of ``points`` expired unused: a refund cannot take these back a second time.
    expired: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = table_args(
        Index("ix_points_lots_member_id_expires_at", "member_id", "expires_at"),
        Index("ix_points_lots_expires_at_remaining", "expires_at", "remaining"),
    )


class ExpiryReminder(Base):
    """Who was found with points expiring soon, once per member and expiry day."""

    __tablename__ = "points_expiry_reminders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=ReminderStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(
        Index("uq_points_expiry_reminders_member_expiry", "member_id", "expires_at", unique=True)
    )
