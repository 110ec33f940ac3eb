"""bind_phone: the WeChat-verified phone, and merging into the member that already holds it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ValidationFailed
from app.members import services as members
from app.members.models import Member, MemberIdentity, MemberMerge
from app.onboarding import services as onboarding
from app.uow import UnitOfWork
from tests.factories import IdentityFactory, MemberFactory
from tests.support.rows import NewRows, reload
from tests.support.wechat import phone_code
from wechat_hooks.miniprogram import WeChatMiniProgramAuth
from wechat_hooks.simulator import SimulatorServer

Login = Callable[..., onboarding.LoginResult]
Bind = Callable[[int, str], Member]
PHONE = "13800138000"


def test_binding_a_phone_sets_it(login: Login, bind: Bind, session: Session, rows: NewRows) -> None:
    caller = login("o-alice").member

    answer = bind(caller.id, PHONE)

    assert answer.id == caller.id
    assert answer.phone == PHONE
    assert answer.phone_masked == "138****8000"  # type: ignore[attr-defined]
    assert reload(session, Member, caller.id).phone == PHONE
    assert rows.added(MemberMerge) == 0


def test_a_foreign_phone_is_stored_with_its_country_code(
    login: Login,
    uow: UnitOfWork,
    mp_auth: WeChatMiniProgramAuth,
    sim: SimulatorServer,
    session: Session,
) -> None:
    caller = login("o-alice").member
    code = sim.state.new_phone_code("61234567", "852")

    members.bind_phone(uow=uow, mp_auth=mp_auth, member_id=caller.id, code=code)

    assert reload(session, Member, caller.id).phone == "+85261234567"


def test_binding_the_same_phone_twice_changes_nothing(
    login: Login, bind: Bind, session: Session, rows: NewRows
) -> None:
    caller = login("o-alice").member
    bind(caller.id, PHONE)

    again = bind(caller.id, PHONE)

    assert again.id == caller.id
    assert reload(session, Member, caller.id).phone == PHONE
    assert reload(session, Member, caller.id).is_active
    assert rows.added(MemberMerge) == 0
    assert rows.added(Member) == 1


def test_a_reused_phone_code_is_a_validation_error(
    login: Login,
    uow: UnitOfWork,
    mp_auth: WeChatMiniProgramAuth,
    sim: SimulatorServer,
    session: Session,
) -> None:
    caller = login("o-alice").member
    code = phone_code(sim, PHONE)
    mp_auth.phone_number(code)  # spent already

    with pytest.raises(ValidationFailed) as caught:
        members.bind_phone(uow=uow, mp_auth=mp_auth, member_id=caller.id, code=code)

    assert caught.value.details["wechat_errcode"] == 40163
    assert reload(session, Member, caller.id).phone is None


def test_binding_another_members_phone_merges_the_caller_into_the_holder(
    login: Login, bind: Bind, uow: UnitOfWork, session: Session
) -> None:
    """The holder (registered at the till, no WeChat) survives: it is the card the tills know.
    It keeps what it has and inherits the profile fields it lacked."""
    with time_machine.travel(datetime(2025, 3, 1, tzinfo=UTC), tick=False):
        holder = MemberFactory(
            phone=PHONE,
            nickname=None,
            avatar_url=None,
            birthday=None,
            gender="unknown",
            city="上海",
            registration_channel="pos",
            registration_store="SH-001",
        )
        IdentityFactory(member=holder, provider="channel", app_id="pos", external_id="POS-778")
    holder_card = holder.card_no
    with time_machine.travel(datetime(2026, 5, 1, tzinfo=UTC), tick=False):
        caller = login("o-alice", unionid="u-alice").member
        members.update_profile(
            uow=uow,
            member_id=caller.id,
            changes={
                "nickname": "小美🌸",
                "avatar_url": "https://img.example.com/a.png",
                "gender": "female",
                "city": "北京",
                "birthday": date(1995, 8, 17),
            },
        )

        answer = bind(caller.id, PHONE)

    assert answer.id == holder.id
    survivor = reload(session, Member, holder.id)
    assert survivor.is_active
    assert survivor.card_no == holder_card
    assert survivor.phone == PHONE
    assert survivor.unionid == "u-alice"
    # inherited, since the holder had none
    assert survivor.nickname == "小美🌸"
    assert survivor.avatar_url == "https://img.example.com/a.png"
    assert survivor.gender == "female"
    assert survivor.birthday == date(1995, 8, 17)
    # kept, since the holder had its own
    assert survivor.city == "上海"
    assert survivor.registration_channel == "pos"
    assert survivor.registration_store == "SH-001"
    assert survivor.registered_at == datetime(2025, 3, 1, tzinfo=UTC)

    loser = reload(session, Member, caller.id)
    assert loser.status == "merged"
    assert loser.merged_into_id == holder.id
    assert loser.phone is None
    assert loser.unionid is None
    assert loser.card_no != holder_card

    rows = session.execute(select(MemberIdentity.external_id, MemberIdentity.member_id))
    owners = {external_id: member_id for external_id, member_id in rows}
    assert owners == {"o-alice": holder.id, "POS-778": holder.id}

    merge = session.scalars(
        select(MemberMerge).where(MemberMerge.from_member_id == caller.id)
    ).one()
    assert (merge.from_member_id, merge.into_member_id, merge.reason) == (
        caller.id,
        holder.id,
        "phone",
    )
    assert merge.moved["identities"] == 1
    assert merge.created_at == datetime(2026, 5, 1, tzinfo=UTC)


def test_the_survivor_keeps_its_own_profile(
    login: Login, bind: Bind, uow: UnitOfWork, session: Session
) -> None:
    holder = MemberFactory(phone=PHONE, nickname="老会员", gender="male", birthday=date(1980, 1, 2))
    caller = login("o-alice").member
    members.update_profile(
        uow=uow,
        member_id=caller.id,
        changes={"nickname": "新昵称", "gender": "female", "birthday": date(1999, 9, 9)},
    )

    survivor = bind(caller.id, PHONE)

    assert survivor.id == holder.id
    assert (survivor.nickname, survivor.gender, survivor.birthday) == (
        "老会员",
        "male",
        date(1980, 1, 2),
    )


def test_a_phone_the_loser_had_is_logged_when_the_survivor_has_another(
    login: Login, bind: Bind, session: Session
) -> None:
    MemberFactory(phone=PHONE)
    caller = login("o-alice").member
    bind(caller.id, "13900139000")

    bind(caller.id, PHONE)

    merge = session.scalars(
        select(MemberMerge).where(MemberMerge.from_member_id == caller.id)
    ).one()
    assert merge.moved["phone_dropped"] == "139****9000"
    assert reload(session, Member, caller.id).phone is None


def test_after_the_merge_the_old_member_id_acts_as_the_survivor(
    login: Login, bind: Bind, uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    holder = MemberFactory(phone=PHONE)
    caller = login("o-alice").member
    bind(caller.id, PHONE)

    assert members.get_member(uow=uow, member_id=caller.id).id == holder.id
    # Binding again through the old id finds the phone already on the survivor: no new merge.
    assert bind(caller.id, PHONE).id == holder.id
    assert rows.added(MemberMerge) == 1


def test_the_unionid_moves_with_the_merge(
    login: Login, bind: Bind, session: Session, rows: NewRows
) -> None:
    holder = MemberFactory(phone=PHONE)
    caller = login("o-alice", unionid="u-alice").member
    bind(caller.id, PHONE)

    # Another app of the brand, same WeChat user: lands on the survivor.
    result = login("o-alice-official", unionid="u-alice")

    assert result.is_new is False
    assert result.member.id == holder.id
    assert reload(session, Member, caller.id).merged_into_id == holder.id
    assert rows.added(Member) == 2
