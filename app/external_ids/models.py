from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default


class ExternalRequest(Base):
    """The first request a partner sent under an external id: its fingerprint and the
    answer it got, written in the same transaction as its effect."""

    __tablename__ = "external_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigId, ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(BinaryString(32))  # order, refund, till_spend, ...
    channel: Mapped[str] = mapped_column(BinaryString(16))  # "" for calls without one
    external_id: Mapped[str] = mapped_column(BinaryString(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 hex of the canonical request
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    # The uniqueness key of every external id: one partner's ids never meet another's.
    __table_args__ = table_args(UniqueConstraint("partner_id", "kind", "channel", "external_id"))
