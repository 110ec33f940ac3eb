"""Signing in from the mini-program: the same openid, or the same unionid, is the same
member; a new member gets the sign-up bonus of the points rules in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from app import clock
from app.errors import UpstreamUnavailable
from app.members import operations as ops
from app.members import rules
from app.members.models import PROVIDER_MINIPROGRAM, Member
from app.members.ports import MiniProgramAuth
from app.members.wechat import call_wechat, require_database
from app.points import operations as points
from app.uow import UnitOfWork


@dataclass(frozen=True)
class LoginResult:
    member: Member
    is_new: bool


def log_in(*, uow: UnitOfWork, mp_auth: MiniProgramAuth, appid: str, code: str) -> LoginResult:
    """Exchange a wx.login code; the same openid, or the same unionid, is the same member."""
    require_database(uow)
    wx = call_wechat(lambda: mp_auth.code_to_session(code))
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
