from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default


class Tier(Base):
    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(BinaryString(32), unique=True)
    name: Mapped[str] = mapped_column(String(32))
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    threshold: Mapped[int] = mapped_column(BigInteger)
    benefits: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow_column_default, onupdate=utcnow_column_default
    )


class MemberTier(Base):
    """A member's tier when it differs from the base tier everyone starts in."""

    __tablename__ = "member_tiers"

    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), primary_key=True)
    tier_code: Mapped[str | None] = mapped_column(BinaryString(32))
    achieved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    # Until then assessment keeps the tier even if the metric has fallen below it.
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TierChange(Base):
    __tablename__ = "tier_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    from_code: Mapped[str | None] = mapped_column(BinaryString(32))
    to_code: Mapped[str | None] = mapped_column(BinaryString(32))
    reason: Mapped[str] = mapped_column(String(64))
    metric_value: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(Index("ix_tier_changes_member_id_id", "member_id", "id"))
