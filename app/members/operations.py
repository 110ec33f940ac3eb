"""Steps on members that other contexts call inside their own transaction (flush only)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, false, select, update
from sqlalchemy.orm import Session, joinedload

from app import clock
from app.members import rules
from app.members.locks import lock_members
from app.members.merge import MERGE_STEPS
from app.members.models import (
    PROVIDER_CHANNEL,
    PROVIDER_MINIPROGRAM,
    Gender,
    Member,
    MemberIdentity,
    MemberMerge,
    ReferenceKind,
)
from app.outbox.events import Event, Topic
from app.outbox.operations import emit
from app.retry import RaceLost


class MergeRaced(RaceLost):
    """A member of the merge changed while this transaction waited for its lock; retry."""


def find_by_identity(
    session: Session, *, provider: str, app_id: str, external_id: str
) -> MemberIdentity | None:
    """The identity with its member loaded (relationships never load lazily)."""
    return session.scalars(
        select(MemberIdentity)
        .options(joinedload(MemberIdentity.member))
        .where(
            MemberIdentity.provider == provider,
            MemberIdentity.app_id == app_id,
            MemberIdentity.external_id == external_id,
        )
    ).one_or_none()


def find_by_unionid(session: Session, unionid: str) -> Member | None:
    return session.scalars(select(Member).where(Member.unionid == unionid)).one_or_none()


def find_by_phone(session: Session, phone: str) -> Member | None:
    canonical = rules.canonical_phone(phone)
    if not canonical:
        return None
    return session.scalars(select(Member).where(Member.phone == canonical)).one_or_none()


def find_by_card_no(session: Session, card_no: str) -> Member | None:
    return session.scalars(select(Member).where(Member.card_no == card_no)).one_or_none()


def resolve(session: Session, member: Member | None) -> Member | None:
    """Follow merges to the member that survives today."""
    seen = 0
    while member is not None and member.merged_into_id is not None and seen < 16:
        member = session.get(Member, member.merged_into_id)
        seen += 1
    return member


def get_active(session: Session, member_id: int) -> Member | None:
    return resolve(session, session.get(Member, member_id))


def miniprogram_openid(session: Session, member_id: int, app_id: str) -> str | None:
    """The member's openid in the mini-program, the address of its subscribe messages."""
    return session.scalars(
        select(MemberIdentity.external_id)
        .where(
            MemberIdentity.member_id == member_id,
            MemberIdentity.provider == PROVIDER_MINIPROGRAM,
            MemberIdentity.app_id == app_id,
        )
        .order_by(MemberIdentity.id.desc())
        .limit(1)
    ).first()


def create_member(session: Session, *, registration_channel: str, **profile: Any) -> Member:
    member = Member(
        card_no=rules.new_card_no(), registration_channel=registration_channel, **profile
    )
    session.add(member)
    session.flush()
    emit(
        session,
        Event(
            Topic.MEMBER_JOINED,
            {"member_id": member.id, "channel": registration_channel},
            member_id=member.id,
        ),
    )
    return member


def attach_identity(
    session: Session,
    member: Member,
    *,
    provider: str,
    app_id: str,
    external_id: str,
    session_key: str | None = None,
) -> MemberIdentity:
    identity = MemberIdentity(
        member_id=member.id,
        provider=provider,
        app_id=app_id,
        external_id=external_id,
        session_key=session_key,
    )
    session.add(identity)
    session.flush()
    return identity


_INHERITED = ("nickname", "avatar_url", "birthday", "city", "registration_store", "referrer_id")


def merge_members(session: Session, *, loser: Member, survivor: Member, reason: str) -> MemberMerge:
    """Fold ``loser`` into ``survivor``: identities, then every registered merge step
    (``app.members.merge``) moves its context's data.

    Both member rows are locked first, lower id first; if either was merged meanwhile the
    transaction lost a race and the use case starts again."""
    if loser.id == survivor.id:
        raise ValueError("a member cannot be merged into itself")
    locked = lock_members(session, loser.id, survivor.id)
    if any(
        locked.get(member.id) is None or locked[member.id].merged_into_id is not None
        for member in (loser, survivor)
    ):
        raise MergeRaced(f"member {loser.id} or {survivor.id} was merged meanwhile")
    moved: dict[str, Any] = {}
    result: Any = session.execute(
        update(MemberIdentity)
        .where(MemberIdentity.member_id == loser.id)
        .values(member_id=survivor.id)
        .execution_options(synchronize_session="fetch")
    )
    moved["identities"] = result.rowcount
    for step in MERGE_STEPS.steps():
        moved.update(step.run(session, loser.id, survivor.id))
    _inherit_profile(loser, survivor)
    released = {"phone": loser.phone, "unionid": loser.unionid}
    loser.merge_into(survivor)
    session.flush()  # release the unique phone/unionid before the survivor may take them
    if survivor.unionid is None and released["unionid"]:
        survivor.unionid = released["unionid"]
    elif released["unionid"] and released["unionid"] != survivor.unionid:
        moved["unionid_dropped"] = True  # two WeChat accounts, one phone: keep the survivor's
    if survivor.phone is None and released["phone"]:
        survivor.phone = released["phone"]
    elif released["phone"] and released["phone"] != survivor.phone:
        moved["phone_dropped"] = rules.mask_phone(released["phone"])
    survivor.updated_at = clock.now()
    merge = MemberMerge(
        from_member_id=loser.id, into_member_id=survivor.id, reason=reason, moved=moved
    )
    session.add(merge)
    session.flush()
    emit(
        session,
        Event(
            Topic.MEMBER_MERGED,
            {"from_member_id": loser.id, "into_member_id": survivor.id, "reason": reason},
            member_id=survivor.id,
        ),
    )
    return merge


def _inherit_profile(loser: Member, survivor: Member) -> None:
    for name in _INHERITED:
        if getattr(survivor, name) is None and getattr(loser, name) is not None:
            setattr(survivor, name, getattr(loser, name))
    if survivor.gender == Gender.UNKNOWN and loser.gender != Gender.UNKNOWN:
        survivor.gender = loser.gender
    survivor.registered_at = min(survivor.registered_at, loser.registered_at)


@dataclass(frozen=True)
class Reference:
    """Which member row a store system's reference names: ``condition`` compares a column
    with the bound parameters ``params`` (one condition per ``shape``, built once, so hot
    statements that use it are built once too); ``expired_qr`` is set for a card QR code
    past its expiry (a retry may still be answered)."""

    shape: str
    params: dict[str, str]
    expired_qr: rules.CardQr | None = None

    @property
    def condition(self) -> ColumnElement[bool]:
        return reference_condition(self.shape)


@functools.cache
def reference_condition(shape: str) -> ColumnElement[bool]:
    """The WHERE clause of a reference of this shape, with its values as bound parameters."""
    if shape == "card_no":
        return Member.card_no == bindparam("ref_value")
    if shape == "phone":
        return Member.phone == bindparam("ref_value")
    if shape == "unionid":
        return Member.unionid == bindparam("ref_value")
    if shape == "channel_member_id":
        identities = select(MemberIdentity.member_id).where(
            MemberIdentity.provider == PROVIDER_CHANNEL,
            MemberIdentity.app_id == bindparam("ref_channel"),
            MemberIdentity.external_id == bindparam("ref_value"),
        )
        return Member.id.in_(identities)
    return false()  # "nobody": a reference that cannot name a member


def reference(
    *, kind: ReferenceKind, value: str, channel: str, secret: str | Sequence[str]
) -> Reference:
    """The row a reference names (before any merge is followed). Raises rules.QrInvalid
    for a QR payload this server did not sign."""
    if kind == ReferenceKind.PHONE:
        canonical = rules.canonical_phone(value)
        return Reference("phone", {"ref_value": canonical}) if canonical else NOBODY
    if kind == ReferenceKind.QR_PAYLOAD:
        try:
            card = rules.decode_card_qr(secret=secret, payload=value, now=clock.now())
        except rules.QrExpired as expired:
            return Reference("card_no", {"ref_value": expired.qr.card_no}, expired.qr)
        return Reference("card_no", {"ref_value": card.card_no})
    if kind == ReferenceKind.CHANNEL_MEMBER_ID:
        return Reference(kind, {"ref_value": value, "ref_channel": channel})
    return Reference(kind, {"ref_value": value})  # card_no, unionid


NOBODY = Reference("nobody", {})


def find_by_reference(
    session: Session, *, kind: ReferenceKind, value: str, channel: str, secret: str | Sequence[str]
) -> Member | None:
    """The member a store system names: card_no, phone, unionid, qr_payload or a channel
    member id, merges followed. Raises rules.QrInvalid / rules.QrExpired for a bad QR."""
    named = reference(kind=kind, value=value, channel=channel, secret=secret)
    if named.expired_qr is not None:
        raise rules.QrExpired(named.expired_qr)
    member = session.scalars(select(Member).where(named.condition), named.params).one_or_none()
    return resolve(session, member)


def create_for_reference(
    session: Session, *, kind: ReferenceKind, value: str, channel: str
) -> Member:
    """A new member known so far only by a phone, unionid or channel member id."""
    if kind == ReferenceKind.PHONE:
        return create_member(
            session, registration_channel=channel, phone=rules.canonical_phone(value)
        )
    if kind == ReferenceKind.UNIONID:
        return create_member(session, registration_channel=channel, unionid=value)
    if kind == ReferenceKind.CHANNEL_MEMBER_ID:
        member = create_member(session, registration_channel=channel)
        attach_identity(
            session, member, provider=PROVIDER_CHANNEL, app_id=channel, external_id=value
        )
        return member
    raise ValueError(f"a member cannot be created from a {kind}")
