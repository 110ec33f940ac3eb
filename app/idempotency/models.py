from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default


class RecordState(StrEnum):
    """A claimed key: its request is running (a lease), or its answer is stored."""

    PENDING = "pending"
    DONE = "done"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scope: Mapped[str] = mapped_column(BinaryString(96))  # who: "mp:42", "open:hk_..."
    key: Mapped[str] = mapped_column(BinaryString(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=RecordState.PENDING)
    status_code: Mapped[int | None] = mapped_column(Integer)
    # TEXT(2**24 - 1) in utf8mb4 is created as LONGTEXT; say so, or autogenerate sees a change.
    response_body: Mapped[str | None] = mapped_column(
        Text().with_variant(mysql.LONGTEXT(), "mysql")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = table_args(
        UniqueConstraint("scope", "key"),
        Index("ix_idempotency_records_expires_at", "expires_at"),
    )
