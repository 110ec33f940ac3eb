from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigId, UTCDateTime, table_args, utcnow_column_default


class Checkin(Base):
    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    day: Mapped[date] = mapped_column(Date)  # the business day in TIMEZONE
    streak: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    # One check-in per member and business day: the second insert fails, whatever the race.
    __table_args__ = table_args(UniqueConstraint("member_id", "day"))
