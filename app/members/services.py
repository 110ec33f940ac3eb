"""Member use cases: log in, bind a phone, profile, the member card, till look-up."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select

from app import clock
from app.errors import Conflict, NotFound, Unauthorized, UpstreamUnavailable, ValidationFailed
from app.members import operations as ops
from app.members import rules
from app.members.models import PROVIDER_MINIPROGRAM, Member, MemberIdentity, MemberMerge
from app.members.ports import MiniProgramAuth
from app.points import operations as points
from app.points import queries as points_queries
from app.tiers import operations as tiers
from app.uow import UnitOfWork
from app.wechat.errors import WeChatCallFailed, WeChatErrorKind

T = TypeVar("T")
PROFILE_FIELDS = frozenset({"nickname", "avatar_url", "gender", "city"})


@dataclass(frozen=True)
class LoginResult:
    member: Member
    is_new: bool


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


def _call_wechat(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except WeChatCallFailed as failure:
        if failure.kind is WeChatErrorKind.INVALID_CODE:
            raise ValidationFailed(
                "The code is invalid, expired or already used; get a new one from WeChat.",
                field="code",
                wechat_errcode=failure.errcode,
            ) from failure
        raise UpstreamUnavailable(wechat_errcode=failure.errcode) from failure


def _require_database(uow: UnitOfWork) -> None:
    """Touch the database before spending a single-use WeChat code: when the database is
    down the request fails here (503 ``unavailable``) and the code stays good for a retry."""
    with uow:
        uow.session.execute(select(1))


def log_in(*, uow: UnitOfWork, mp_auth: MiniProgramAuth, appid: str, code: str) -> LoginResult:
    """Exchange a wx.login code; the same openid, or the same unionid, is the same member."""
    _require_database(uow)
    wx = _call_wechat(lambda: mp_auth.code_to_session(code))
    if not rules.is_storable_session(wx.openid, wx.unionid, wx.session_key):
        raise UpstreamUnavailable("WeChat answered a session that cannot be stored.")

    return uow.run(_log_in_session, appid, wx.openid, wx.unionid, wx.session_key)


def _log_in_session(
    uow: UnitOfWork, appid: str, openid: str, unionid: str | None, session_key: str
) -> LoginResult:
    session = uow.session
    identity = ops.find_by_identity(
        session, provider=PROVIDER_MINIPROGRAM, app_id=appid, external_id=openid
    )
    if identity is not None:
        identity.session_key = session_key
        identity.last_seen_at = clock.now()
        known = ops.resolve(session, identity.member) or identity.member
        return LoginResult(_adopt_unionid(uow, known, unionid), is_new=False)
    existing = ops.find_by_unionid(session, unionid) if unionid else None
    is_new = existing is None
    member = existing or ops.create_member(
        session, registration_channel="miniprogram", unionid=unionid
    )
    if is_new:
        points.grant_signup_bonus(session, member.id)
    ops.attach_identity(
        session,
        member,
        provider=PROVIDER_MINIPROGRAM,
        app_id=appid,
        external_id=openid,
        session_key=session_key,
    )
    return LoginResult(member, is_new=is_new)


def _adopt_unionid(uow: UnitOfWork, member: Member, unionid: str | None) -> Member:
    if not unionid or member.unionid == unionid:
        return member
    owner = ops.find_by_unionid(uow.session, unionid)
    if owner is None:
        if member.unionid is None:
            member.unionid = unionid
        return member
    ops.merge_members(uow.session, loser=member, survivor=owner, reason="unionid")
    return owner


def bind_phone(*, uow: UnitOfWork, mp_auth: MiniProgramAuth, member_id: int, code: str) -> Member:
    """Bind the WeChat-verified phone; a phone already on another member merges the two.

    The member who already holds the phone survives: it is the one the tills know.
    """
    _require_database(uow)
    number = _call_wechat(lambda: mp_auth.phone_number(code))
    try:
        phone = rules.normalise_phone(number.pure_phone_number, number.country_code)
    except rules.UnusablePhone:
        raise ValidationFailed(
            "WeChat gave a phone number that cannot be bound; nothing was changed.",
            field="code",
            reason="unusable_phone",
        ) from None

    return uow.run(_bind_phone, member_id, phone)


def _bind_phone(uow: UnitOfWork, member_id: int, phone: str) -> Member:
    member = _require_member(uow, member_id)
    owner = ops.find_by_phone(uow.session, phone)
    if owner is None:
        member.phone = phone
    elif owner.id != member.id:
        ops.merge_members(uow.session, loser=member, survivor=owner, reason="phone")
        return owner
    return member


def _require_member(uow: UnitOfWork, member_id: int) -> Member:
    member = ops.get_active(uow.session, member_id)
    if member is None:
        raise Unauthorized("This member no longer exists.")
    return member


def get_member(*, uow: UnitOfWork, member_id: int) -> Member:
    with uow:
        return _require_member(uow, member_id)


def update_profile(*, uow: UnitOfWork, member_id: int, changes: dict[str, Any]) -> Member:
    """Change the profile; the birthday can be set once, since it drives privileges."""
    with uow:
        member = _require_member(uow, member_id)
        changes = dict(changes)
        birthday: date | None = changes.pop("birthday", None)
        unknown = set(changes) - PROFILE_FIELDS
        if unknown:
            raise ValidationFailed("These fields cannot be changed.", fields=sorted(unknown))
        if birthday is not None and not member.set_birthday(birthday):
            raise Conflict("The birthday can only be set once.", field="birthday")
        for name, value in changes.items():
            setattr(member, name, value)
        uow.commit()
        return member


def get_card(*, uow: UnitOfWork, member_id: int, secret: str, qr_ttl_seconds: int) -> CardView:
    with uow:
        member = _require_member(uow, member_id)
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


@dataclass(frozen=True)
class MemberDetail:
    member: Member
    identities: list[Any]
    merges: list[Any]
    points: dict[str, Any] = field(default_factory=dict)
    ledger: list[Any] = field(default_factory=list)
    tier: dict[str, Any] | None = None
    tier_history: list[Any] = field(default_factory=list)


def search_members(
    *,
    uow: UnitOfWork,
    card_no: str | None,
    phone: str | None,
    after_id: int | None,
    limit: int,
) -> list[Member]:
    """Active members, newest first, optionally by exact card number or phone."""
    with uow:
        query = select(Member).where(Member.status == "active").order_by(Member.id.desc())
        if card_no:
            query = query.where(Member.card_no == card_no)
        if phone:
            query = query.where(Member.phone == phone)
        if after_id is not None:
            query = query.where(Member.id < after_id)
        return list(uow.session.scalars(query.limit(limit)))


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
