"""The till's hot paths read and write only what they must (docs/ARCHITECTURE.md, Hot
paths): an order by a member with an account is at most 8 statements before its COMMIT,
a till spend at most 5 (4 when its soonest lot covers it), a replay of either one read; a
spend reads only the lots it takes from, however many the member holds. Counted on
whichever database the suite runs on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, sessionmaker

from app.caching import ConfigCache
from app.members.models import Member
from app.points import operations as points
from app.points.models import PointsLot
from app.points.operations.lots import lots_covering
from app.uow import UnitOfWork
from app.wiring import CONFIG_MODELS
from tests.factories import MemberFactory, TierFactory
from tests.factories.settings import set_points_rules
from tests.support.books import assert_books_agree
from tests.support.orders import PlaceOrder, redeem

T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


class Statements:
    """Every statement sent on the test's connection while ``counting`` (COMMIT aside:
    it is no cursor statement)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.on = False

    def before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The test's savepoints stand in for the BEGIN and COMMIT of a real transaction.
        if self.on and "SAVEPOINT" not in statement:
            self.sent.append(" ".join(statement.split()))

    def count(self, run: Any) -> Any:
        self.sent.clear()
        self.on = True
        try:
            return run()
        finally:
            self.on = False


@pytest.fixture
def statements(connection: Connection) -> Iterator[Statements]:
    counter = Statements()
    event.listen(connection, "before_cursor_execute", counter.before)
    yield counter
    event.remove(connection, "before_cursor_execute", counter.before)


@pytest.fixture
def uow(session_factory: sessionmaker[Session], redis: Any) -> UnitOfWork:
    """Use cases as a worker runs them: settings and tiers kept between requests."""
    return UnitOfWork(ConfigCache(redis, CONFIG_MODELS).install(session_factory))


@pytest.fixture
def member(session: Session, senders: None, time_machine: Any) -> Member:
    """A member with an account and one lot, on a two-tier ladder and the default rules."""
    time_machine.move_to(T0, tick=False)
    set_points_rules(session)
    TierFactory(code="silver", name="银卡", rank=1, threshold=0)
    TierFactory(code="gold", name="金卡", rank=2, threshold=10_000_000)
    member = MemberFactory()
    session.commit()
    return member


def _order(place_order: PlaceOrder, member: Member, external_id: str) -> Any:
    return place_order(("card_no", member.card_no), 12_345, external_id=external_id)


def test_an_order_is_at_most_eight_statements_and_its_replay_one(
    place_order: PlaceOrder, member: Member, statements: Statements, session: Session
) -> None:
    _order(place_order, member, "FIRST")  # the account exists from now on

    answered = statements.count(lambda: _order(place_order, member, "SECOND"))

    assert answered.points_earned == 123
    assert len(statements.sent) <= 8, statements.sent
    statements.count(lambda: _order(place_order, member, "SECOND"))
    assert len(statements.sent) == 1, statements.sent  # the replay: one read
    assert assert_books_agree(session, member.id).balance == 246


def test_a_till_spend_its_soonest_lot_covers_is_four_statements_and_its_replay_one(
    uow: UnitOfWork,
    place_order: PlaceOrder,
    member: Member,
    statements: Statements,
    session: Session,
) -> None:
    _order(place_order, member, "FUNDS")

    answered = statements.count(lambda: redeem(uow, member, 3, "TILL-1"))

    assert answered.balance == 120
    # the intake (with the soonest lot), the lot, the account, the entry: no lot read
    assert len(statements.sent) == 4, statements.sent
    assert [s for s in statements.sent if s.startswith("SELECT")] == statements.sent[:1]
    again = statements.count(lambda: redeem(uow, member, 3, "TILL-1"))
    assert (again.replayed, again.balance) == (True, 120)
    assert len(statements.sent) == 1, statements.sent
    assert assert_books_agree(session, member.id).balance == 120


def test_a_spend_reads_only_the_lots_it_takes_from(
    uow: UnitOfWork, member: Member, statements: Statements, session: Session
) -> None:
    for day in range(100):  # 100 open lots, each expiring a day after the one before
        with uow:
            points.earn(
                uow.session,
                member_id=member.id,
                points=10,
                reason_code="adjustment",
                kind="adjust",
                expires_at=T0 + timedelta(days=30 + day),
            )
            uow.commit()
    loaded: list[int] = []

    def count_load(lot: PointsLot, _context: Any) -> None:
        loaded.append(lot.id)

    event.listen(PointsLot, "load", count_load)
    try:
        statements.count(lambda: redeem(uow, member, 15, "TILL-SMALL"))
    finally:
        event.remove(PointsLot, "load", count_load)

    assert len(statements.sent) <= 5, statements.sent
    assert len(loaded) == 1  # the second soonest, not the hundred: the first came with the intake
    assert assert_books_agree(session, member.id).balance == 985

    # A spend beyond the soonest lots the first read looks at reads on, and takes them all.
    assert redeem(uow, member, 500, "TILL-LARGE").balance == 485
    books = assert_books_agree(session, member.id)
    assert sorted(lot.remaining for lot in books.lots)[:51] == [0] * 51  # 51 lots emptied


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lots=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=40),
    share=st.integers(min_value=1, max_value=1000),
)
def test_the_lots_read_for_a_spend_are_exactly_the_soonest_that_cover_it(
    session: Session, senders: None, lots: list[int], share: int
) -> None:
    savepoint = session.begin_nested()
    try:
        with time_machine.travel(T0, tick=False):
            _check_lots_covering(session, lots, share)
    finally:
        savepoint.rollback()


def _check_lots_covering(session: Session, lots: list[int], share: int) -> None:
    member = MemberFactory()
    account = points.lock_account(session, member.id)
    for day, remaining in enumerate(lots):
        points.earn(
            session,
            member_id=member.id,
            points=remaining,
            reason_code="adjustment",
            kind="adjust",
            expires_at=T0 + timedelta(days=10 + day // 2),  # pairs expire together
        )
    wanted = max(1, sum(lots) * share // 1000)  # from one point to all of them

    taken = lots_covering(session, account, wanted, T0)

    # The fewest soonest-expiring lots whose points reach the spend, in that order.
    needed = next(n for n in range(1, len(lots) + 1) if sum(lots[:n]) >= wanted)
    assert [lot.remaining for lot in taken] == lots[:needed]
    assert all(isinstance(lot, PointsLot) for lot in taken)
