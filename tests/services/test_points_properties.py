"""Hypothesis, stateful: random sequences of orders, refunds, till spends, operator
adjustments, check-ins, time jumps and expiry runs for three members keep, after every step
and for every member:

- balance == sum of the ledger deltas == sum of what is left of the open lots, and every
  entry's balance_after is the running sum;
- balance >= 0 and debt >= 0, and a debt only exists at a zero balance;
- an earning made while a debt is owed settles the debt before any of it counts.

Each example runs inside a savepoint of the test's transaction, rolled back at its end, so
every example starts from the same clean state with fresh members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from app import clock
from app.admins.operations import Actor
from app.checkins import services as checkins
from app.errors import Conflict, InsufficientPoints, LimitReached
from app.orders import services as orders
from app.points import queries as points_queries
from app.points import rules
from app.points import services as points_services
from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.uow import UnitOfWork
from tests.factories import MemberFactory, bound_to
from tests.factories.orders import item
from tests.factories.partners import SENDER, add_senders
from tests.factories.settings import set_points_rules
from tests.support.books import books_of
from tests.support.settings import SECRET_KEY

T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
OPERATOR = Actor(type="admin", name="prop", id=1)
RULES = {
    "points_per_yuan": 1,
    "signup_bonus": 0,
    "checkin": {"base": 5, "streak_bonus": {"2": 3, "3": 10}},
    "expiry": {"kind": "days", "days": 30},  # short, so time jumps make lots expire
}
WHO = st.integers(min_value=0, max_value=2)


@dataclass
class OrderState:
    external_id: str
    who: int
    amount: int
    points_earned: int
    refunded: int = 0
    reversed: int = 0  # points refunds took back (or left owed) so far


@dataclass(frozen=True)
class Till:
    external_id: str
    who: int
    points: int
    balance: int


@dataclass(frozen=True)
class Standing:
    spendable: int  # what the member may spend now (expired lots excluded)
    debt: int
    entries: int


class PointsMachine(RuleBasedStateMachine):
    connection: Connection
    session_factory: sessionmaker[Session]

    orders_placed = Bundle("orders")
    tills = Bundle("tills")

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = self.connection.begin_nested()
        self.traveller = time_machine.travel(T0, tick=False)
        self.coordinates = self.traveller.start()
        self.uow = UnitOfWork(self.session_factory)
        with self.session_factory() as session, bound_to(session):
            people = MemberFactory.create_batch(3)
            self.member_ids = [person.id for person in people]
            self.card_nos = [person.card_no for person in people]
            set_points_rules(session, **RULES)
            add_senders(session)
            session.commit()
        # each member's standing after the last step: the invariant refreshes it every step
        self.known = {who: Standing(0, 0, 0) for who in range(3)}
        self.orders: dict[str, OrderState] = {}
        self.streaks: dict[tuple[int, date], int] = {}
        self.counter = 0

    def teardown(self) -> None:
        try:
            self.traveller.stop()
        finally:
            self.savepoint.rollback()

    # --- helpers ---

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:04d}"

    def expired_of(self, external_id: str) -> int:
        from app.orders.models import Order

        with self.session_factory() as session:
            order_id = session.scalar(select(Order.id).where(Order.external_id == external_id))
            total = session.scalar(
                select(func.coalesce(func.sum(PointsLot.expired), 0)).where(
                    PointsLot.order_id == order_id
                )
            )
        return int(total or 0)

    def standing(self, who: int) -> Standing:
        """The member's standing read afresh (and remembered as the next step's "before")."""
        member_id = self.member_ids[who]
        with self.session_factory() as session:
            account = session.get(PointsAccount, member_id)
            entries = session.scalar(select(func.count()).where(PointsEntry.member_id == member_id))
            fresh = Standing(
                points_queries.balance_of(session, member_id),
                account.debt if account is not None else 0,
                int(entries or 0),
            )
        self.known[who] = fresh
        return fresh

    @staticmethod
    def spend_size(spendable: int) -> st.SearchStrategy[int]:
        """Everything, part of it, or more than there is: spends that empty the balance are
        what turn a later refund into a debt."""
        short = st.integers(min_value=spendable + 1, max_value=spendable + 300)
        if not spendable:
            return short
        return st.one_of(st.just(spendable), st.integers(min_value=1, max_value=spendable), short)

    def assert_earning_settles_debt_first(
        self, before: Standing, after: Standing, earned: int
    ) -> None:
        assert after.debt == max(0, before.debt - earned)
        assert after.spendable == before.spendable + max(0, earned - before.debt)
        if before.debt >= earned:
            assert after.spendable == before.spendable  # nothing counts until the debt is paid
        if before.debt and earned:
            event("an earning settled a debt")

    def assert_unchanged(self, before: Standing, who: int) -> None:
        assert self.standing(who) == before

    # --- rules ---

    @initialize(
        target=orders_placed,
        amounts=st.lists(st.integers(min_value=100, max_value=60_000), min_size=3, max_size=3),
    )
    def first_orders(self, amounts: list[int]) -> Any:
        """Every member starts with an order, so spends and refunds have something to act on."""
        return multiple(*(self.place_order(who, amount) for who, amount in enumerate(amounts)))

    @rule(target=orders_placed, who=WHO, amount=st.integers(min_value=0, max_value=60_000))
    def place_order(self, who: int, amount: int) -> str:
        before = self.known[who]
        external_id = self.next_id("O")
        outcome = orders.record_order(
            uow=self.uow,
            sender=SENDER,
            secret=SECRET_KEY,
            channel="pos",
            external_id=external_id,
            member=orders.MemberRef("card_no", self.card_nos[who]),
            paid_at=clock.now(),
            amount_cents=amount,
            items=[item(amount)],
        )
        assert outcome.member_id == self.member_ids[who]
        assert outcome.points_earned == amount // 100
        self.assert_earning_settles_debt_first(before, self.standing(who), amount // 100)
        self.orders[external_id] = OrderState(external_id, who, amount, outcome.points_earned)
        return external_id

    @rule(order=orders_placed, data=st.data())
    def refund(self, order: str, data: st.DataObject) -> None:
        state = self.orders[order]
        left = state.amount - state.refunded
        kind = data.draw(st.sampled_from(("full", "partial", "beyond")), label="kind")
        if kind == "partial" and left > 1:
            amount = data.draw(st.integers(min_value=1, max_value=left - 1), label="amount")
        elif kind == "beyond" or left == 0:
            amount = left + data.draw(st.integers(min_value=1, max_value=5_000), label="extra")
        else:
            amount = left
        before = self.known[state.who]
        call = {
            "uow": self.uow,
            "sender": SENDER,
            "channel": "pos",
            "external_order_id": order,
            "external_id": self.next_id("R"),
            "amount_cents": amount,
        }
        if amount > left:
            with pytest.raises(Conflict):
                orders.record_refund(**call)
            self.assert_unchanged(before, state.who)
            return
        due = rules.reversal_for_refund(
            points_earned=state.points_earned,
            order_amount_cents=state.amount,
            refunded_before_cents=state.refunded,
            refund_cents=amount,
        )
        outcome = orders.record_refund(**call)
        state.refunded += amount
        # Points of the order that expired unused were lost once: a refund does not take them
        # again. (Read after the call: the refund itself writes off lots overdue by then.)
        lost = self.expired_of(order)
        owed = min(due, max(0, state.points_earned - lost - state.reversed))
        if owed < due:
            event("a refund found some of the order's points expired")
        taken = min(owed, before.spendable)
        assert outcome.points_reversed == owed
        assert outcome.debt_added == owed - taken
        state.reversed += owed
        if outcome.debt_added:
            event("a refund left a debt")
        after = self.standing(state.who)
        assert after.spendable == before.spendable - taken
        assert after.debt == before.debt + owed - taken
        # a replay of the same refund answers the same and changes nothing
        again = orders.record_refund(**call)
        assert (again.refund_id, again.points_reversed, again.replayed) == (
            outcome.refund_id,
            owed,
            True,
        )
        self.assert_unchanged(after, state.who)

    @rule(target=tills, who=WHO, data=st.data())
    def spend_at_till(self, who: int, data: st.DataObject) -> Any:
        before = self.known[who]
        amount = data.draw(self.spend_size(before.spendable), label="points")
        external_id = self.next_id("T")
        call = {
            "uow": self.uow,
            "sender": SENDER,
            "secret": SECRET_KEY,
            "member": orders.MemberRef("card_no", self.card_nos[who]),
            "points_to_spend": amount,
            "external_id": external_id,
        }
        if amount > before.spendable:
            event("a till spend was short")
            with pytest.raises(InsufficientPoints):
                orders.redeem_at_till(**call)
            self.assert_unchanged(before, who)
            return multiple()  # nothing was spent: nothing to replay
        outcome = orders.redeem_at_till(**call)
        assert outcome.balance == before.spendable - amount
        assert self.standing(who).spendable == outcome.balance
        return Till(external_id, who, amount, outcome.balance)

    @rule(till=tills)
    def replay_till(self, till: Till) -> None:
        before = self.known[till.who]
        outcome = orders.redeem_at_till(
            uow=self.uow,
            sender=SENDER,
            secret=SECRET_KEY,
            member=orders.MemberRef("card_no", self.card_nos[till.who]),
            points_to_spend=till.points,
            external_id=till.external_id,
        )
        assert outcome.balance == till.balance  # the first answer, whatever happened since
        self.assert_unchanged(before, till.who)

    @rule(who=WHO, credit=st.booleans(), data=st.data())
    def adjust(self, who: int, credit: bool, data: st.DataObject) -> None:
        before = self.known[who]
        if credit:
            delta = data.draw(st.integers(min_value=1, max_value=400), label="delta")
        else:
            delta = -data.draw(self.spend_size(before.spendable), label="debit")
        call = {
            "uow": self.uow,
            "actor": OPERATOR,
            "member_id": self.member_ids[who],
            "delta": delta,
            "reason": "property test",
        }
        if delta < 0 and -delta > before.spendable:
            with pytest.raises(InsufficientPoints):
                points_services.adjust_points(**call)
            self.assert_unchanged(before, who)
            return
        points_services.adjust_points(**call)
        after = self.standing(who)
        if delta > 0:
            self.assert_earning_settles_debt_first(before, after, delta)
        else:
            assert after.spendable == before.spendable + delta
            assert after.debt == before.debt

    @rule(who=WHO)
    def check_in(self, who: int) -> None:
        today = clock.today()
        before = self.known[who]
        if (who, today) in self.streaks:
            with pytest.raises(LimitReached):
                checkins.check_in(uow=self.uow, member_id=self.member_ids[who])
            self.assert_unchanged(before, who)
            return
        streak = self.streaks.get((who, today - timedelta(days=1)), 0) + 1
        result = checkins.check_in(uow=self.uow, member_id=self.member_ids[who])
        self.streaks[(who, today)] = streak
        assert result.streak == streak
        assert result.points == rules.checkin_points(
            rules.parse_points_rules(rules.DEFAULT_RULES | RULES).checkin, streak
        )
        self.assert_earning_settles_debt_first(before, self.standing(who), result.points)

    @rule(hours=st.integers(min_value=1, max_value=24 * 20), then_expire=st.booleans())
    def time_passes(self, hours: int, then_expire: bool) -> None:
        self.coordinates.shift(timedelta(hours=hours))
        if then_expire:
            self.run_expiry()

    def run_expiry(self) -> None:
        before = [self.standing(who) for who in range(3)]  # the clock moved: read afresh
        if points_services.expire_points(uow=self.uow, batch_size=2)["points"]:
            event("the expiry job wrote points off")
        now = clock.now()
        with self.session_factory() as session:
            overdue = session.scalars(
                select(PointsLot.id).where(
                    PointsLot.member_id.in_(self.member_ids),
                    PointsLot.remaining > 0,
                    PointsLot.expires_at <= now,
                )
            ).all()
        assert overdue == []
        for who in range(3):
            after = self.standing(who)
            assert after.spendable == before[who].spendable  # only dead points went
            assert after.debt == before[who].debt
        again = points_services.expire_points(uow=self.uow)
        assert again == {"members": 0, "points": 0}

    # --- after every step ---

    @invariant()
    def books_agree(self) -> None:
        with self.session_factory() as session:
            accounts = {
                account.member_id: account
                for account in session.scalars(
                    select(PointsAccount).where(PointsAccount.member_id.in_(self.member_ids))
                )
            }
            entries = session.execute(
                select(PointsEntry.member_id, PointsEntry.delta, PointsEntry.balance_after)
                .where(PointsEntry.member_id.in_(self.member_ids))
                .order_by(PointsEntry.id)
            ).all()
            lots = session.execute(
                select(PointsLot.member_id, PointsLot.points, PointsLot.remaining).where(
                    PointsLot.member_id.in_(self.member_ids)
                )
            ).all()
            spendable = {m: points_queries.balance_of(session, m) for m in self.member_ids}
        for member_id in self.member_ids:
            account = accounts.get(member_id)
            balance = account.balance if account else 0
            debt = account.debt if account else 0
            running = 0
            for _, delta, balance_after in (e for e in entries if e[0] == member_id):
                running += delta
                assert balance_after == running  # each entry carries the balance after it
            mine = [(p, left) for owner, p, left in lots if owner == member_id]
            assert all(0 <= left <= p for p, left in mine)
            open_sum = sum(left for _, left in mine if left > 0)
            assert balance == running == open_sum, (member_id, balance, running, open_sum)
            assert balance >= 0
            assert debt >= 0
            assert debt == 0 or balance == 0, (member_id, balance, debt)
            assert 0 <= spendable[member_id] <= balance
            count = sum(1 for e in entries if e[0] == member_id)
            self.known[self.member_ids.index(member_id)] = Standing(
                spendable[member_id], debt, count
            )


def test_the_points_books_hold_under_random_sequences(
    connection: Connection, session_factory: sessionmaker[Session]
) -> None:
    machine = type(
        "BoundPointsMachine",
        (PointsMachine,),
        {"connection": connection, "session_factory": session_factory},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def test_the_machine_starts_each_example_from_a_clean_state(
    connection: Connection, session_factory: sessionmaker[Session]
) -> None:
    """The rollback per example really removes an example's rows (else later examples
    would see earlier members' lots in the expiry job)."""
    machine = type(
        "BoundPointsMachine",
        (PointsMachine,),
        {"connection": connection, "session_factory": session_factory},
    )
    first = machine()
    first.place_order(0, 10_000)
    member_id = first.member_ids[0]
    assert first.standing(0).spendable == 100
    first.teardown()

    with session_factory() as session:
        assert books_of(session, member_id).entries == []
        assert session.scalars(select(PointsLot)).all() == []
    assert datetime.now(UTC) != T0
