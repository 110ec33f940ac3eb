from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UTCDateTime, table_args, utcnow_column_default


class RunOutcome(StrEnum):
    """How a job run went (``job_runs.outcome``)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class JobRun(Base):
    """One run of a scheduled job: when it started and ended, and how it went."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default=RunOutcome.RUNNING)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = table_args(Index("ix_job_runs_job_id_started_at", "job_id", "started_at"))
