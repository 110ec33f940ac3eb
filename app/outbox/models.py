"""The outbox table and the record of each handler's delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, JSONDocument, UTCDateTime, table_args, utcnow_column_default


class OutboxMessage(Base):
    """One event, written in the transaction of the change it announces.

    Pending while ``handled_at`` and ``dead_at`` are empty; a drain leases it
    (``leased_until``, ``lease_owner``) and counts each lease as an attempt."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    # The member the event is about when it was recorded; handlers follow merges themselves.
    member_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(96))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = table_args(
        Index("ix_outbox_pending", "handled_at", "dead_at", "available_at"),
        Index("ix_outbox_member_id", "member_id"),
    )

    def release(self, *, now: datetime, error: str, retry_at: datetime, dead: bool) -> None:
        self.leased_until, self.lease_owner = None, None
        self.last_error = error[:2000]
        if dead:
            self.dead_at = now
        else:
            self.available_at = retry_at

    def mark_handled(self, now: datetime) -> None:
        self.handled_at = now
        self.leased_until, self.lease_owner = None, None


class OutboxDelivery(Base):
    """A handler ran to completion for a message: its unique key is what keeps a re-run
    (after a crash, an expired lease, a second worker) from doing the work twice."""

    __tablename__ = "outbox_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox.id"))
    handler: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(255))
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(
        Index("uq_outbox_deliveries_message_id_handler", "message_id", "handler", unique=True)
    )
