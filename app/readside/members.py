"""Member views that read across members, points and tiers: the member card, the till's
look-up and the operator's member detail. They change nothing; HTTP packages call them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from app import clock
from app.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.members import operations as ops
from app.members import rules
from app.members.models import Member, MemberIdentity, MemberMerge
from app.points import queries as points_queries
from app.tiers import operations as tiers
from app.uow import UnitOfWork


@dataclass(frozen=True)
class CardView:
    card_no: str
    qr_payload: str
    qr_expires_at: datetime
    tier: dict[str, Any] | None = None
    growth: dict[str, Any] | None = None
    points: dict[str, Any] = field(default_factory=lambda: {"balance": 0, "expiring": []})
    paid_membership: dict[str, Any] | None = None
    stored_value_cents: int = 0


@dataclass(frozen=True)
class LookupView:
    member: Member
    tier: dict[str, Any] | None = None
    points_balance: int = 0
    stored_value_cents: int = 0


@dataclass(frozen=True)
class MemberDetail:
    member: Member
    identities: list[Any]
    merges: list[Any]
    points: dict[str, Any] = field(default_factory=dict)
    ledger: list[Any] = field(default_factory=list)
    tier: dict[str, Any] | None = None
    tier_history: list[Any] = field(default_factory=list)


def get_card(*, uow: UnitOfWork, member_id: int, secret: str, qr_ttl_seconds: int) -> CardView:
    with uow:
        member = _active_member(uow, member_id)
        qr = rules.issue_card_qr(
            card_no=member.card_no, now=clock.now(), ttl_seconds=qr_ttl_seconds
        )
        tier, growth = tiers.card_tier(uow.session, member.id)
        return CardView(
            card_no=member.card_no,
            qr_payload=rules.encode_card_qr(secret, qr),
            qr_expires_at=qr.expires_at,
            tier=tier,
            growth=growth,
            points={
                "balance": points_queries.balance_of(uow.session, member.id),
                "expiring": points_queries.expiring_soonest(uow.session, member.id),
            },
        )


def look_up_member(
    *,
    uow: UnitOfWork,
    secret: str | Sequence[str],
    card_no: str | None = None,
    phone: str | None = None,
    qr_payload: str | None = None,
) -> LookupView:
    """Find a member for the till by exactly one of card number, phone or card QR payload."""
    given = [
        name
        for name, v in (("card_no", card_no), ("phone", phone), ("qr_payload", qr_payload))
        if v
    ]
    if len(given) != 1:
        raise ValidationFailed("Give exactly one of card_no, phone, qr_payload.", fields=given)
    if qr_payload:
        card_no = _card_no_from_qr(secret, qr_payload)
    with uow:
        session = uow.session
        member = (
            ops.find_by_card_no(session, card_no)
            if card_no
            else ops.find_by_phone(session, phone or "")
        )
        member = ops.resolve(session, member)
        if member is None:
            raise NotFound("No member matches.")
        tier = tiers.tier_view(tiers.current_tier(session, member.id))
        return LookupView(
            member=member, tier=tier, points_balance=points_queries.balance_of(session, member.id)
        )


def _card_no_from_qr(secret: str | Sequence[str], payload: str) -> str:
    try:
        return rules.decode_card_qr(secret=secret, payload=payload, now=clock.now()).card_no
    except rules.QrExpired as expired:
        raise Conflict(
            "The card QR code has expired; ask the member to refresh it.",
            reason="qr_expired",
            expired_at=expired.qr.expires_at.isoformat(),
        ) from None
    except rules.QrInvalid:
        raise ValidationFailed("The card QR code is not valid.", field="qr_payload") from None


def member_detail(*, uow: UnitOfWork, member_id: int) -> MemberDetail:
    with uow:
        member = uow.session.get(Member, member_id)
        if member is None:
            raise NotFound("No such member.")
        identities = list(
            uow.session.scalars(
                select(MemberIdentity)
                .where(MemberIdentity.member_id == member_id)
                .order_by(MemberIdentity.id)
            )
        )
        merges = list(
            uow.session.scalars(
                select(MemberMerge)
                .where(
                    or_(
                        MemberMerge.into_member_id == member_id,
                        MemberMerge.from_member_id == member_id,
                    )
                )
                .order_by(MemberMerge.id)
            )
        )
        tier = tiers.tier_view(tiers.current_tier(uow.session, member_id))
        return MemberDetail(
            member=member,
            identities=identities,
            merges=merges,
            points=points_queries.account_summary(uow.session, member_id),
            ledger=points_queries.recent_entries(uow.session, member_id, limit=20),
            tier=tier,
            tier_history=tiers.recent_changes(uow.session, member_id, limit=20),
        )


def _active_member(uow: UnitOfWork, member_id: int) -> Member:
    member = ops.get_active(uow.session, member_id)
    if member is None:
        raise Unauthorized("This member no longer exists.")
    return member
