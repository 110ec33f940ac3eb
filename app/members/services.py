"""Member use cases: bind a phone, the profile, the operators' member search."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from app.db import newest_first
from app.errors import Conflict, Unauthorized, ValidationFailed
from app.members import operations as ops
from app.members import rules
from app.members.models import Member, MemberStatus
from app.members.ports import MiniProgramAuth
from app.members.wechat import call_wechat, require_database
from app.uow import UnitOfWork

PROFILE_FIELDS = frozenset({"nickname", "avatar_url", "gender", "city"})


def bind_phone(*, uow: UnitOfWork, mp_auth: MiniProgramAuth, member_id: int, code: str) -> Member:
    """Bind the WeChat-verified phone; a phone already on another member merges the two.

    The member who already holds the phone survives: it is the one the tills know.
    """
    require_database(uow)
    number = call_wechat(lambda: mp_auth.phone_number(code))
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
        query = select(Member).where(Member.status == MemberStatus.ACTIVE)
        if card_no:
            query = query.where(Member.card_no == card_no)
        if phone:
            query = query.where(Member.phone == phone)
        page = newest_first(query, Member.id, before_id=after_id, limit=limit)
        return list(uow.session.scalars(page))
