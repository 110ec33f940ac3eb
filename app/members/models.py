from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, BigId, BinaryString, UTCDateTime, table_args, utcnow_column_default
from app.members.rules import mask_phone


class Gender(StrEnum):
    UNKNOWN = "unknown"
    MALE = "male"
    FEMALE = "female"


GENDERS = tuple(gender.value for gender in Gender)


class MemberStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"  # folded into ``merged_into_id``


class Provider(StrEnum):
    """Who issued an identity's external id (``member_identities.provider``)."""

    MINIPROGRAM = "wechat_mp"
    OFFICIAL_ACCOUNT = "wechat_oa"
    WECOM = "wecom"
    CHANNEL = "channel"  # POS / ERP / Tmall / JD / Youzan member ids; app_id = channel


PROVIDER_MINIPROGRAM = Provider.MINIPROGRAM
PROVIDER_OFFICIAL_ACCOUNT = Provider.OFFICIAL_ACCOUNT
PROVIDER_WECOM = Provider.WECOM
PROVIDER_CHANNEL = Provider.CHANNEL


class ReferenceKind(StrEnum):
    """How a store system names a member (the one key of the open API's ``member``)."""

    CARD_NO = "card_no"
    PHONE = "phone"
    UNIONID = "unionid"
    QR_PAYLOAD = "qr_payload"
    CHANNEL_MEMBER_ID = "channel_member_id"


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    card_no: Mapped[str] = mapped_column(BinaryString(12), unique=True)
    unionid: Mapped[str | None] = mapped_column(BinaryString(64), unique=True)
    phone: Mapped[str | None] = mapped_column(BinaryString(24), unique=True)
    nickname: Mapped[str | None] = mapped_column(String(64))
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    gender: Mapped[str] = mapped_column(String(8), default=Gender.UNKNOWN)
    birthday: Mapped[date | None] = mapped_column(Date)
    city: Mapped[str | None] = mapped_column(String(64))
    registration_channel: Mapped[str] = mapped_column(String(32))
    registration_store: Mapped[str | None] = mapped_column(String(64))
    referrer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"))
    status: Mapped[str] = mapped_column(String(16), default=MemberStatus.ACTIVE)
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("members.id"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow_column_default, onupdate=utcnow_column_default
    )

    identities: Mapped[list[MemberIdentity]] = relationship(
        back_populates="member", foreign_keys="MemberIdentity.member_id", lazy="raise"
    )

    __table_args__ = table_args(Index("ix_members_registered_at", "registered_at"))

    @property
    def is_active(self) -> bool:
        return self.status == MemberStatus.ACTIVE

    def merge_into(self, survivor: Member) -> None:
        self.status = MemberStatus.MERGED
        self.merged_into_id = survivor.id
        # Free the unique keys so the survivor can hold them.
        self.phone = None
        self.unionid = None

    def set_birthday(self, birthday: date) -> bool:
        """Birthday drives privileges, so it is set once. Returns False if already set."""
        if self.birthday is not None and self.birthday != birthday:
            return False
        self.birthday = birthday
        return True


class MemberIdentity(Base):
    __tablename__ = "member_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    app_id: Mapped[str] = mapped_column(BinaryString(64))
    external_id: Mapped[str] = mapped_column(BinaryString(128))
    # WeChat's session_key for mini-program identities: stays on the server, never answered.
    session_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)

    member: Mapped[Member] = relationship(
        back_populates="identities", foreign_keys=[member_id], lazy="raise"
    )

    __table_args__ = table_args(UniqueConstraint("provider", "app_id", "external_id"))


class MemberMerge(Base):
    """The log of every merge: who was folded into whom, why, and what moved."""

    __tablename__ = "member_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    into_member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    moved: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)


def _phone_masked(self: Member) -> str | None:
    return mask_phone(self.phone)


Member.phone_masked = property(_phone_masked)  # type: ignore[attr-defined]


class MemberSession(Base):
    """One mini-program log-in. The member's token names it; a revoked session's tokens are
    refused (logout, or an operator withdrawing the member's sessions)."""

    __tablename__ = "member_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow_column_default)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = table_args(
        Index("ix_member_sessions_member_id", "member_id"),
        Index("ix_member_sessions_created_at", "created_at"),
    )
