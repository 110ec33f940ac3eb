"""What a member merge carries of points: binding a phone another member holds moves points
lots with their expiry, orders, tier and check-ins to the survivor, and a debt that the
survivor's points or next earning settle; a till retry after a merge answers the first spend,
and a use case that read the loser before the merge committed starts again."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.checkins import services as checkins
from app.checkins.models import Checkin
from app.members import operations as member_ops
from app.members.models import Member, MemberMerge
from app.onboarding import services as onboarding
from app.orders import services as orders
from app.orders.models import Order
from app.points import operations as points
from app.points.models import PointsAccount, PointsLot
from app.retry import lost_a_race
from app.tiers.models import TierChange
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules
from tests.factories.tiers import make_ladder
from tests.support.books import assert_books_agree, books_of, tier_code_of
from tests.support.orders import redeem_by_card
from tests.support.points import in_tx
from tests.support.rows import count_rows

PHONE = "13900139000"


# --- merging ---


def test_binding_a_phone_merges_points_lots_orders_tier_and_checkins(
    uow: UnitOfWork,
    session: Session,
    frozen: Any,
    login: Callable[..., onboarding.LoginResult],
    bind: Callable[[int, str], Member],
    place_order: Callable[..., orders.OrderOutcome],
) -> None:
    set_points_rules(session)
    make_ladder()
    # the till knows the phone: an order by phone creates the holder
    holder_id = place_order(("phone", PHONE), 20_000).member_id
    caller = login("o-bob").member
    gold_order = place_order(("card_no", caller.card_no), 150_000)  # 1500 points, gold
    redeem_by_card(uow, caller.card_no, 300, "T-1")
    checkins.check_in(uow=uow, member_id=caller.id)  # 06-01
    frozen.shift(timedelta(days=1))
    checkins.check_in(uow=uow, member_id=caller.id)  # 06-02
    checkins.check_in(uow=uow, member_id=holder_id)  # 06-02 as well
    caller_before = assert_books_agree(session, caller.id)
    holder_before = assert_books_agree(session, holder_id)
    assert (caller_before.balance, holder_before.balance) == (1500 - 300 + 10, 200 + 5)
    assert tier_code_of(session, caller.id) == "gold"
    moving_lots = {lot.id: lot.expires_at for lot in caller_before.lots if lot.remaining}

    survivor = bind(caller.id, PHONE)

    assert survivor.id == holder_id
    holder = assert_books_agree(session, holder_id)
    loser = assert_books_agree(session, caller.id)
    assert holder.balance == 205 + 1210
    assert loser.balance == 0
    assert loser.entries[-1].note == f"merged into member {holder_id}"
    assert holder.entries[-1].note == f"merged from member {caller.id}"
    assert (holder.entries[-1].reason_code, holder.entries[-1].reason) == ("merge", "账户合并")
    moved = {lot.id: lot.expires_at for lot in holder.lots if lot.id in moving_lots}
    assert moved == moving_lots  # the lots keep their expiry
    assert all(lot.remaining == 0 for lot in loser.lots)
    assert count_rows(session, Order, Order.member_id == holder_id) == 2
    assert count_rows(session, Order, Order.member_id == caller.id) == 0
    assert tier_code_of(session, holder_id) == "gold"
    assert (
        session.scalars(select(TierChange.reason).where(TierChange.member_id == holder_id)).all()[
            -1
        ]
        == f"merged from member {caller.id}"
    )
    days = session.scalars(
        select(Checkin.day).where(Checkin.member_id == holder_id).order_by(Checkin.day)
    ).all()
    assert days == [date(2025, 6, 1), date(2025, 6, 2)]
    assert count_rows(session, Checkin, Checkin.member_id == caller.id) == 0
    merge = session.scalars(
        select(MemberMerge).where(MemberMerge.from_member_id == caller.id)
    ).one()
    assert merge.moved["points"] == 1210
    assert merge.moved["orders"] == 1
    assert merge.moved["tier"] == "gold"
    assert merge.moved["checkins"] == 1

    # the moved order is refunded from the survivor, whose books still agree
    refund = orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id=_external_id(session, gold_order.order_id),
        external_id="R-1",
        amount_cents=150_000,
    )
    # the survivor holds 1415: the rest of the 1500 becomes a debt, never a negative balance
    assert (refund.points_reversed, refund.debt_added) == (1500, 85)
    final = assert_books_agree(session, holder_id)
    assert (final.balance, final.debt) == (0, 85)


def _external_id(session: Session, order_id: int) -> str:
    session.expire_all()
    return session.get(Order, order_id).external_id  # type: ignore[union-attr]


def test_a_merge_moves_a_debt_that_the_survivors_next_earning_settles(
    uow: UnitOfWork,
    session: Session,
    frozen: Any,
    place_order: Callable[..., orders.OrderOutcome],
) -> None:
    set_points_rules(session)
    loser, survivor = MemberFactory(), MemberFactory()
    first = place_order(("card_no", loser.card_no), 10_000, external_id="L-1")  # 100 points
    redeem_by_card(uow, loser.card_no, 100, "T-L")
    orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id="L-1",
        external_id="R-L",
        amount_cents=10_000,
    )
    assert (books_of(session, loser.id).debt, first.points_earned) == (100, 100)

    def merge(session: Session) -> MemberMerge:
        return member_ops.merge_members(
            session,
            loser=session.get(Member, loser.id),  # type: ignore[arg-type]
            survivor=session.get(Member, survivor.id),  # type: ignore[arg-type]
            reason="test",
        )

    record = in_tx(uow, merge)

    assert record.moved["points_debt"] == 100
    assert record.moved["points"] == 0
    assert books_of(session, loser.id).debt == 0
    assert assert_books_agree(session, survivor.id).debt == 100
    assert assert_books_agree(session, survivor.id).balance == 0

    place_order(("card_no", survivor.card_no), 15_000)  # 150 points, 100 of them owed

    books = assert_books_agree(session, survivor.id)
    assert (books.balance, books.debt) == (50, 0)
    assert books.kinds()[-2:] == ["earn", "reverse"]
    assert books.entries[-1].delta == -100
    assert session.get(PointsAccount, loser.id).balance == 0  # type: ignore[union-attr]
    assert count_rows(session, PointsLot, PointsLot.member_id == loser.id) == 1


def test_a_merge_settles_a_moved_debt_from_the_survivors_points_at_once(
    uow: UnitOfWork,
    session: Session,
    frozen: Any,
    place_order: Callable[..., orders.OrderOutcome],
) -> None:
    set_points_rules(session)
    loser, survivor = MemberFactory(), MemberFactory()
    place_order(("card_no", loser.card_no), 10_000, external_id="L-1")  # 100 points
    redeem_by_card(uow, loser.card_no, 100, "T-L")
    orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id="L-1",
        external_id="R-L",
        amount_cents=10_000,
    )
    place_order(("card_no", survivor.card_no), 30_000, external_id="S-1")  # 300 points

    record = in_tx(
        uow,
        lambda session: member_ops.merge_members(
            session,
            loser=session.get(Member, loser.id),
            survivor=session.get(Member, survivor.id),
            reason="test",
        ),
    )

    assert (record.moved["points_debt"], record.moved["points_debt_settled"]) == (100, 100)
    books = assert_books_agree(session, survivor.id)
    assert (books.balance, books.debt) == (200, 0)
    assert books.entries[-1].kind == "reverse"
    assert books.entries[-1].delta == -100


def test_a_till_retry_after_the_member_was_merged_answers_the_first_spend(
    uow: UnitOfWork,
    session: Session,
    frozen: Any,
    place_order: Callable[..., orders.OrderOutcome],
) -> None:
    set_points_rules(session)
    loser, survivor = MemberFactory(), MemberFactory()
    place_order(("card_no", loser.card_no), 10_000, external_id="L-1")
    first = redeem_by_card(uow, loser.card_no, 40, "T-1")
    in_tx(
        uow,
        lambda session: member_ops.merge_members(
            session,
            loser=session.get(Member, loser.id),
            survivor=session.get(Member, survivor.id),
            reason="test",
        ),
    )

    retry = redeem_by_card(uow, loser.card_no, 40, "T-1")  # the old card resolves to the survivor

    assert retry.balance == first.balance == 60
    books = assert_books_agree(session, survivor.id)
    assert books.balance == 60
    assert [e.kind for e in books.entries].count("spend") == 0  # the spend stayed the loser's


def test_points_never_land_on_a_member_merged_meanwhile(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    """A use case that read the loser before a merge committed must start again: locking the
    loser's account after the merge refuses, and the retry resolves the survivor."""
    loser, survivor = MemberFactory(), MemberFactory()
    in_tx(
        uow,
        lambda session: member_ops.merge_members(
            session,
            loser=session.get(Member, loser.id),
            survivor=session.get(Member, survivor.id),
            reason="test",
        ),
    )

    with pytest.raises(points.MergedMeanwhile) as raised:
        in_tx(uow, lambda session: points.lock_account(session, loser.id))

    assert raised.value.survivor_id == survivor.id
    assert lost_a_race(raised.value)
