"""Profile changes, the member card's QR payload, and the till's member look-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from app.members import services as members
from app.members.models import Member
from app.onboarding import services as onboarding
from app.readside import members as member_views
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.support.rows import reload
from tests.support.settings import SECRET_KEY

Login = Callable[..., onboarding.LoginResult]
Bind = Callable[[int, str], Member]
TTL = 60
NOW = datetime(2026, 5, 1, 2, 0, 0, tzinfo=UTC)


def _card(uow: UnitOfWork, member_id: int) -> member_views.CardView:
    return member_views.get_card(
        uow=uow, member_id=member_id, secret=SECRET_KEY, qr_ttl_seconds=TTL
    )


def _look_up(uow: UnitOfWork, **by: Any) -> Member:
    return member_views.look_up_member(uow=uow, secret=SECRET_KEY, **by).member


# profile


def test_update_profile_changes_the_given_fields(uow: UnitOfWork, session: Session) -> None:
    member = MemberFactory(nickname="旧", city="上海", gender="unknown")

    answer = members.update_profile(
        uow=uow,
        member_id=member.id,
        changes={
            "nickname": "小美🌸",
            "avatar_url": "https://img.example.com/a.png",
            "gender": "female",
            "city": "杭州",
        },
    )

    assert answer.nickname == "小美🌸"
    stored = reload(session, Member, member.id)
    assert (stored.nickname, stored.avatar_url, stored.gender, stored.city) == (
        "小美🌸",
        "https://img.example.com/a.png",
        "female",
        "杭州",
    )
    assert stored.card_no == member.card_no


def test_a_birthday_is_set_once(uow: UnitOfWork, session: Session) -> None:
    member = MemberFactory(birthday=None, nickname="小美")
    members.update_profile(uow=uow, member_id=member.id, changes={"birthday": date(1995, 8, 17)})

    same = members.update_profile(
        uow=uow, member_id=member.id, changes={"birthday": date(1995, 8, 17), "city": "北京"}
    )
    with pytest.raises(Conflict) as caught:
        members.update_profile(
            uow=uow,
            member_id=member.id,
            changes={"birthday": date(1995, 8, 18), "nickname": "改名"},
        )

    assert same.city == "北京"  # the same birthday again is fine, with other changes
    assert caught.value.code == "conflict"
    assert caught.value.status == 409
    assert caught.value.details == {"field": "birthday"}
    stored = reload(session, Member, member.id)
    assert stored.birthday == date(1995, 8, 17)
    assert stored.nickname == "小美"  # the refused call changed nothing


def test_update_profile_leaves_the_fields_not_named_alone(
    uow: UnitOfWork, session: Session
) -> None:
    member = MemberFactory(nickname="A", city="北京", gender="male")

    answer = members.update_profile(uow=uow, member_id=member.id, changes={"nickname": "B"})

    assert (answer.nickname, answer.city, answer.gender) == ("B", "北京", "male")
    stored = reload(session, Member, member.id)
    assert (stored.nickname, stored.city, stored.gender) == ("B", "北京", "male")


def test_a_profile_change_by_a_merged_members_id_lands_on_the_survivor(
    login: Login, bind: Bind, uow: UnitOfWork, session: Session
) -> None:
    """The loser's token still names the loser's id: what it changes is the survivor's."""
    holder = MemberFactory(phone="13800138000", city="上海")
    caller = login("o-alice").member
    bind(caller.id, "13800138000")

    answer = members.update_profile(uow=uow, member_id=caller.id, changes={"city": "成都"})

    assert answer.id == holder.id
    assert reload(session, Member, holder.id).city == "成都"


def test_a_profile_of_an_unknown_member_is_unauthorized(uow: UnitOfWork) -> None:
    with pytest.raises(Unauthorized):
        members.update_profile(uow=uow, member_id=987654, changes={"nickname": "x"})


# the card and its QR payload


def test_the_card_payload_resolves_to_its_member_at_the_till(
    uow: UnitOfWork, session: Session
) -> None:
    member, other = MemberFactory(), MemberFactory()
    with time_machine.travel(NOW, tick=False):
        card = _card(uow, member.id)
        found = _look_up(uow, qr_payload=card.qr_payload)

    assert card.card_no == member.card_no
    assert card.qr_expires_at == NOW + timedelta(seconds=TTL)
    assert card.points == {"balance": 0, "expiring": []}
    assert found.id == member.id
    assert found.id != other.id


def test_a_new_members_card_has_no_tier_no_points_and_nothing_stored_or_paid(
    uow: UnitOfWork, session: Session
) -> None:
    """Without a tier ladder there is no tier to show; the empty values are true ones."""
    member = MemberFactory()
    with time_machine.travel(NOW, tick=False):
        card = _card(uow, member.id)

    assert card.tier is None
    assert card.points == {"balance": 0, "expiring": []}
    assert (card.paid_membership, card.stored_value_cents) == (None, 0)


def test_each_card_fetch_issues_a_fresh_payload(uow: UnitOfWork, session: Session) -> None:
    member = MemberFactory()
    with time_machine.travel(NOW, tick=False) as traveller:
        first = _card(uow, member.id)
        traveller.shift(timedelta(seconds=30))
        second = _card(uow, member.id)

    assert second.qr_payload != first.qr_payload
    assert second.qr_expires_at - first.qr_expires_at == timedelta(seconds=30)
    assert member.card_no in first.qr_payload


def test_a_payload_still_works_a_second_before_it_expires(
    uow: UnitOfWork, session: Session
) -> None:
    member = MemberFactory()
    with time_machine.travel(NOW, tick=False) as traveller:
        card = _card(uow, member.id)
        traveller.shift(timedelta(seconds=TTL - 1))

        assert _look_up(uow, qr_payload=card.qr_payload).id == member.id


@pytest.mark.parametrize("later", [timedelta(seconds=TTL), timedelta(hours=20)])
def test_an_expired_payload_is_a_conflict(
    uow: UnitOfWork, session: Session, later: timedelta
) -> None:
    """A screenshot of yesterday's card must not pay today."""
    member = MemberFactory()
    with time_machine.travel(NOW, tick=False) as traveller:
        card = _card(uow, member.id)
        traveller.shift(later)

        with pytest.raises(Conflict) as caught:
            _look_up(uow, qr_payload=card.qr_payload)

    assert caught.value.status == 409
    assert caught.value.details["reason"] == "qr_expired"
    assert caught.value.details["expired_at"] == card.qr_expires_at.isoformat()


def _forge(payload: str, index: int, value: str) -> str:
    parts = payload.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p, other: _forge(p, 1, other.card_no), id="another_members_card"),
        pytest.param(lambda p, _: _forge(p, 2, str(int(p.split(".")[2]) + 86400)), id="expiry"),
        pytest.param(lambda p, _: p[:-1] + ("0" if p[-1] != "0" else "1"), id="signature"),
        pytest.param(lambda p, _: p[:-1] + "é", id="non_ascii_signature"),
        pytest.param(lambda p, _: _forge(p, 2, p.split(".")[2][:-1] + "٣"), id="arabic_digit"),
        pytest.param(lambda p, _: _forge(p, 0, "HY0"), id="prefix"),
        pytest.param(lambda p, other: other.card_no, id="a_bare_card_number"),
    ],
)
def test_a_tampered_payload_is_a_validation_error(
    uow: UnitOfWork, session: Session, tamper: Callable[[str, Member], str]
) -> None:
    member, other = MemberFactory(), MemberFactory()
    with time_machine.travel(NOW, tick=False):
        payload = _card(uow, member.id).qr_payload

        with pytest.raises(ValidationFailed) as caught:
            _look_up(uow, qr_payload=tamper(payload, other))

    assert caught.value.details == {"field": "qr_payload"}


def test_a_payload_signed_with_another_secret_is_a_validation_error(
    uow: UnitOfWork, session: Session
) -> None:
    member = MemberFactory()
    with time_machine.travel(NOW, tick=False):
        card = member_views.get_card(
            uow=uow, member_id=member.id, secret="another-" + SECRET_KEY, qr_ttl_seconds=TTL
        )
        with pytest.raises(ValidationFailed):
            _look_up(uow, qr_payload=card.qr_payload)


# look-up at the till


def test_look_up_by_card_number_and_by_phone(uow: UnitOfWork, session: Session) -> None:
    member = MemberFactory(phone="13800138000")
    MemberFactory(phone="13900139000")

    assert _look_up(uow, card_no=member.card_no).id == member.id
    assert _look_up(uow, phone="13800138000").id == member.id


@pytest.mark.parametrize(
    "by",
    [
        {},
        {"card_no": "", "phone": ""},
        {"card_no": "799273987135", "phone": "13800138000"},
        {"phone": "13800138000", "qr_payload": "HY1.x.1.y"},
        {"card_no": "799273987135", "phone": "13800138000", "qr_payload": "HY1.x.1.y"},
    ],
)
def test_look_up_needs_exactly_one_key(
    uow: UnitOfWork, session: Session, by: dict[str, str]
) -> None:
    MemberFactory(card_no="799273987135", phone="13800138000")

    with pytest.raises(ValidationFailed) as caught:
        _look_up(uow, **by)

    assert caught.value.details["fields"] == [k for k, v in by.items() if v]


@pytest.mark.parametrize("by", [{"card_no": "799273987135"}, {"phone": "13800138000"}])
def test_an_unknown_member_is_not_found(
    uow: UnitOfWork, session: Session, by: dict[str, str]
) -> None:
    MemberFactory(card_no="799273987127", phone="13900139000")

    with pytest.raises(NotFound):
        _look_up(uow, **by)


def test_a_merged_members_old_card_resolves_to_the_survivor(
    login: Login, bind: Bind, uow: UnitOfWork, session: Session
) -> None:
    holder = MemberFactory(phone="13800138000")
    caller = login("o-alice").member
    with time_machine.travel(NOW, tick=False):
        old_payload = _card(uow, caller.id).qr_payload  # on screen when the merge happens
        bind(caller.id, "13800138000")

        by_payload = _look_up(uow, qr_payload=old_payload)
        new_card = _card(uow, caller.id)

    assert reload(session, Member, caller.id).status == "merged"
    assert _look_up(uow, card_no=caller.card_no).id == holder.id
    assert by_payload.id == holder.id
    assert new_card.card_no == holder.card_no
