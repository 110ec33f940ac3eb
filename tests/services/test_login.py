"""log_in: a wx.login code exchanged with the simulator over real HTTP becomes a member."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import UpstreamUnavailable, ValidationFailed
from app.members import rules
from app.members.models import PROVIDER_MINIPROGRAM, Member, MemberIdentity, MemberMerge
from app.onboarding import services as onboarding
from app.uow import UnitOfWork
from tests.factories import IdentityFactory, MemberFactory
from tests.support.rows import NewRows, reload
from tests.support.wechat import MP_APPID, login_code
from wechat_hooks.miniprogram import WeChatMiniProgramAuth
from wechat_hooks.simulator import SimulatorServer

Login = Callable[..., onboarding.LoginResult]


def _openids(session: Session, member_id: int) -> set[str]:
    session.expire_all()
    return set(
        session.scalars(
            select(MemberIdentity.external_id).where(MemberIdentity.member_id == member_id)
        )
    )


def _identity(session: Session, openid: str) -> MemberIdentity:
    session.expire_all()
    return session.scalars(select(MemberIdentity).where(MemberIdentity.external_id == openid)).one()


def test_the_first_login_creates_a_member_with_a_card_and_an_identity(
    login: Login, session: Session
) -> None:
    result = login("o-alice")

    assert result.is_new is True
    member = reload(session, Member, result.member.id)
    assert member.is_active
    assert member.registration_channel == "miniprogram"
    assert rules.is_valid_card_no(member.card_no)
    assert member.unionid is None
    identity = _identity(session, "o-alice")
    assert (identity.member_id, identity.provider, identity.app_id) == (
        member.id,
        PROVIDER_MINIPROGRAM,
        MP_APPID,
    )


def test_two_logins_of_one_openid_are_one_member(
    login: Login, session: Session, rows: NewRows
) -> None:
    first = login("o-alice")
    second = login("o-alice")

    assert (first.is_new, second.is_new) == (True, False)
    assert second.member.id == first.member.id
    assert second.member.card_no == first.member.card_no
    assert rows.added(Member) == 1
    assert rows.added(MemberIdentity) == 1


def test_different_openids_are_different_members(
    login: Login, session: Session, rows: NewRows
) -> None:
    alice, bob = login("o-alice"), login("o-bob")

    assert alice.member.id != bob.member.id
    assert alice.member.card_no != bob.member.card_no
    assert rows.added(Member) == 2


def test_the_same_unionid_from_another_openid_is_the_same_member(
    login: Login, session: Session, rows: NewRows
) -> None:
    first = login("o-mp-alice", unionid="u-alice")
    second = login("o-other-app-alice", unionid="u-alice")

    assert second.is_new is False
    assert second.member.id == first.member.id
    assert reload(session, Member, first.member.id).unionid == "u-alice"
    assert _openids(session, first.member.id) == {"o-mp-alice", "o-other-app-alice"}
    assert rows.added(Member) == 1


def test_a_unionid_arriving_later_is_adopted(login: Login, session: Session, rows: NewRows) -> None:
    first = login("o-alice")
    second = login("o-alice", unionid="u-alice")

    assert second.member.id == first.member.id
    assert reload(session, Member, first.member.id).unionid == "u-alice"
    assert rows.added(MemberMerge) == 0


def test_a_reused_code_is_a_validation_error_and_creates_nothing(
    uow: UnitOfWork,
    mp_auth: WeChatMiniProgramAuth,
    sim: SimulatorServer,
    session: Session,
    rows: NewRows,
) -> None:
    code = login_code(sim, "o-alice")
    mp_auth.code_to_session(code)  # the mini-program (or an attacker) spent it already

    with pytest.raises(ValidationFailed) as caught:
        onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)

    assert caught.value.details["wechat_errcode"] == 40163
    assert caught.value.details["field"] == "code"
    assert caught.value.status == 422
    assert rows.added(Member) == 0
    assert rows.added(MemberIdentity) == 0


def test_logging_in_twice_with_one_code_fails_the_second_time(
    uow: UnitOfWork,
    mp_auth: WeChatMiniProgramAuth,
    sim: SimulatorServer,
    session: Session,
    rows: NewRows,
) -> None:
    code = login_code(sim, "o-alice")
    onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)

    with pytest.raises(ValidationFailed) as caught:
        onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)

    assert caught.value.details["wechat_errcode"] == 40163
    assert rows.added(Member) == 1
    assert rows.added(MemberIdentity) == 1


def test_an_unknown_code_is_40029(
    uow: UnitOfWork, mp_auth: WeChatMiniProgramAuth, session: Session, rows: NewRows
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code="never-issued")

    assert caught.value.details["wechat_errcode"] == 40029
    assert rows.added(Member) == 0


def test_an_expired_code_is_40029(
    uow: UnitOfWork,
    mp_auth: WeChatMiniProgramAuth,
    sim: SimulatorServer,
    session: Session,
    rows: NewRows,
) -> None:
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False) as traveller:
        code = login_code(sim, "o-alice")
        traveller.shift(timedelta(minutes=5))

        with pytest.raises(ValidationFailed) as caught:
            onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)

    assert caught.value.details["wechat_errcode"] == 40029
    assert rows.added(Member) == 0


def test_wechat_failing_is_upstream_unavailable_and_creates_nothing(
    uow: UnitOfWork,
    mp_auth: WeChatMiniProgramAuth,
    sim: SimulatorServer,
    session: Session,
    rows: NewRows,
) -> None:
    code = login_code(sim, "o-alice")
    sim.state.add_fault("/sns/jscode2session", errcode=-1, times=1)

    with pytest.raises(UpstreamUnavailable) as caught:
        onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)

    assert caught.value.status == 503
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.details["wechat_errcode"] == -1
    assert rows.added(Member) == 0
    # WeChat never saw the code, so the mini-program's retry with it succeeds.
    retry = onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)
    assert retry.is_new is True
    assert rows.added(Member) == 1


def test_the_session_key_stays_on_the_identity(login: Login, session: Session) -> None:
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False) as traveller:
        first = login("o-alice")
        first_key = _identity(session, "o-alice").session_key
        traveller.shift(timedelta(hours=3))
        login("o-alice")

    identity = _identity(session, "o-alice")
    assert first_key
    assert len(first_key) == 24  # base64 of 16 bytes, as WeChat's
    assert identity.session_key and identity.session_key != first_key  # the latest one
    assert identity.last_seen_at == datetime(2026, 5, 1, 3, tzinfo=UTC)
    assert identity.created_at == datetime(2026, 5, 1, tzinfo=UTC)
    assert "session_key" not in Member.__table__.columns
    assert not hasattr(first.member, "session_key")


def test_login_after_a_merge_answers_the_survivor(
    login: Login, bind: Callable[[int, str], Member], session: Session, rows: NewRows
) -> None:
    holder = MemberFactory(phone="13800138000", registration_channel="pos")
    caller = login("o-alice").member
    bind(caller.id, "13800138000")

    again = login("o-alice")

    assert again.is_new is False
    assert again.member.id == holder.id
    assert again.member.card_no == holder.card_no
    assert reload(session, Member, caller.id).merged_into_id == holder.id
    assert rows.added(Member) == 2


def test_an_identity_left_on_a_merged_member_resolves_to_the_survivor(
    login: Login, session: Session, rows: NewRows
) -> None:
    survivor = MemberFactory()
    merged = MemberFactory(status="merged", merged_into_id=survivor.id)
    IdentityFactory(member=merged, external_id="o-left-behind")

    result = login("o-left-behind")

    assert result.is_new is False
    assert result.member.id == survivor.id
    assert rows.added(Member) == 2


def test_a_login_bringing_another_members_unionid_merges_into_that_member(
    login: Login, session: Session, rows: NewRows
) -> None:
    """Alice first used the mini-program before it was bound to the open platform (no
    unionid); meanwhile she became a member elsewhere with her unionid. Her next login
    brings the unionid: the two are one person."""
    early = login("o-alice-mp").member
    holder = login("o-alice-other", unionid="u-alice").member

    result = login("o-alice-mp", unionid="u-alice")

    assert result.is_new is False
    assert result.member.id == holder.id
    loser = reload(session, Member, early.id)
    assert loser.status == "merged"
    assert loser.merged_into_id == holder.id
    assert reload(session, Member, holder.id).unionid == "u-alice"
    assert _openids(session, holder.id) == {"o-alice-mp", "o-alice-other"}
    merge = session.scalars(select(MemberMerge).where(MemberMerge.from_member_id == early.id)).one()
    assert (merge.from_member_id, merge.into_member_id, merge.reason) == (
        early.id,
        holder.id,
        "unionid",
    )
    assert merge.moved["identities"] == 1
    # And from now on the merged openid logs straight into the survivor.
    assert login("o-alice-mp", unionid="u-alice").member.id == holder.id
    assert rows.added(MemberMerge) == 1
