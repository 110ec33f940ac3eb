"""What operators see of members: the search (exact card number or phone, every active
member newest first, merged members left out) and the detail with identities and merges.

The consumer's own profile and card, and the till's look-up, are tested in
test_profile_and_card.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.members import services as members
from app.members.models import Member
from app.onboarding import services as onboarding
from app.readside import members as member_views
from app.uow import UnitOfWork
from tests.factories import MemberFactory

Login = Callable[..., onboarding.LoginResult]
Bind = Callable[[int, str], Member]
PHONE = "13812347777"


def search(uow: UnitOfWork, limit: int = 100, **by: Any) -> list[int]:
    """The ids search_members answers, first page."""
    found = members.search_members(
        uow=uow,
        card_no=by.get("card_no"),
        phone=by.get("phone"),
        after_id=by.get("after_id"),
        limit=limit,
    )
    return [member.id for member in found]


def test_a_search_by_card_number_or_phone_finds_exactly_that_member(
    uow: UnitOfWork, login: Login, bind: Bind
) -> None:
    target = login("o-search-target").member
    login("o-search-bystander")
    bind(target.id, "13812348888")

    assert search(uow, card_no=target.card_no) == [target.id]
    assert search(uow, phone="13812348888") == [target.id]


@pytest.mark.parametrize("by", [{"card_no": "100000000000"}, {"phone": "13000000000"}])
def test_a_search_that_matches_nobody_finds_nothing(
    uow: UnitOfWork, login: Login, by: dict[str, str]
) -> None:
    login("o-search-someone")

    assert search(uow, **by) == []


def test_without_a_filter_active_members_come_newest_first_in_pages(
    uow: UnitOfWork, session: Session
) -> None:
    made = [member.id for member in MemberFactory.create_batch(4)]
    merged = MemberFactory(status="merged")

    everyone = search(uow)
    page = search(uow, limit=2)
    after = search(uow, limit=2, after_id=page[-1])

    assert everyone[:4] == made[::-1]
    assert merged.id not in everyone
    assert page + after == made[::-1]


def test_a_member_merged_away_is_not_found_by_search(
    uow: UnitOfWork, login: Login, bind: Bind
) -> None:
    holder, loser = login("o-list-holder").member, login("o-list-loser").member
    bind(holder.id, PHONE)
    bind(loser.id, PHONE)

    assert holder.id in search(uow)
    assert loser.id not in search(uow)
    assert search(uow, card_no=loser.card_no) == []


def test_the_detail_shows_identities_and_the_merge_on_both_sides(
    uow: UnitOfWork, login: Login, bind: Bind
) -> None:
    holder = login("o-detail-holder", unionid="u-detail").member
    loser = login("o-detail-loser").member
    bind(holder.id, PHONE)
    bind(loser.id, PHONE)

    kept = member_views.member_detail(uow=uow, member_id=holder.id)
    gone = member_views.member_detail(uow=uow, member_id=loser.id)

    assert kept.member.status == "active"
    assert sorted(identity.external_id for identity in kept.identities) == [
        "o-detail-holder",
        "o-detail-loser",
    ]
    assert {identity.provider for identity in kept.identities} == {"wechat_mp"}
    (merge,) = kept.merges
    assert (merge.from_member_id, merge.into_member_id, merge.reason) == (
        loser.id,
        holder.id,
        "phone",
    )
    assert merge.moved["identities"] == 1
    # The member merged away still answers, pointing at the survivor.
    assert (gone.member.status, gone.member.merged_into_id) == ("merged", holder.id)
    assert gone.identities == []
    assert [m.into_member_id for m in gone.merges] == [holder.id]


def test_the_detail_of_an_unknown_member_is_not_found(uow: UnitOfWork) -> None:
    with pytest.raises(NotFound):
        member_views.member_detail(uow=uow, member_id=999_999_999)
