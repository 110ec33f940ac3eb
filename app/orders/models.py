from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The partner that sent it (NULL only for orders recorded before partners were).
    partner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("partners.id"))
    channel: Mapped[str] = mapped_column(BinaryString(16))
    external_id: Mapped[str] = mapped_column(BinaryString(64))
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    store_code: Mapped[str | None] = mapped_column(String(32))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    refunded_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    # The answer given when the order was recorded, replayed for its duplicates.
    tier_after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    coupon_codes: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    items: Mapped[list[OrderItem]] = relationship(back_populates="order", lazy="raise")

    __table_args__ = table_args(
        UniqueConstraint("partner_id", "channel", "external_id"),
        Index("ix_orders_member_id_paid_at", "member_id", "paid_at"),
    )

    @property
    def net_cents(self) -> int:
        return self.amount_cents - self.refunded_cents


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    category: Mapped[str | None] = mapped_column(String(64))
    brand: Mapped[str | None] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("partners.id"))
    channel: Mapped[str] = mapped_column(BinaryString(16))
    external_id: Mapped[str] = mapped_column(BinaryString(64))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    points_reversed: Mapped[int] = mapped_column(BigInteger)
    debt_added: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    __table_args__ = table_args(UniqueConstraint("partner_id", "channel", "external_id"))
