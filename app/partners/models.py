from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, BinaryString, UTCDateTime, utcnow_column_default


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    app_key: Mapped[str] = mapped_column(BinaryString(32), unique=True)
    # HMAC needs the secret itself, so it is stored encrypted under SECRET_KEY, not hashed.
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The order channels it may post on (["pos", "tmall"]); NULL: every channel.
    channels: Mapped[list[str] | None] = mapped_column(JSON)
    # Server-side e-commerce: may spend a member's points by card number, phone or unionid
    # (others only with the member's card QR code, shown at the till).
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
