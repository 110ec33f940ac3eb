from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow_column_default


class SettingsDocument(Base):
    """One row per document (``points_rules``, ``tier_policy``); absent means defaults."""

    __tablename__ = "settings_documents"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow_column_default, onupdate=utcnow_column_default
    )
