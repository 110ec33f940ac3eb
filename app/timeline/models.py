"""Timeline rows: one per event, kept with the member that survives merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JSONDocument, UTCDateTime, table_args, utcnow_column_default


class TimelineEntry(Base):
    __tablename__ = "member_timeline"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    # The outbox message it came from; no foreign key, so handled messages can be purged.
    event_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(
        Index("uq_member_timeline_event_id", "event_id", unique=True),
        Index("ix_member_timeline_member_id_occurred_at", "member_id", "occurred_at"),
    )
