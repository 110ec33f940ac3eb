"""The points ledger: earn, spend, reverse, adjust and expire, at the operations and
service level; the expiry and reminder jobs; and what a member merge carries."""

# ruff: noqa: PLR0917 - pytest passes fixtures by name; a test asks for what it needs

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.models import AuditEntry
from app.admins.operations import Actor
from app.checkins import services as checkins
from app.checkins.models import Checkin
from app.errors import InsufficientPoints, ValidationFailed
from app.members import operations as member_ops
from app.members.models import Member, MemberMerge
from app.onboarding import services as onboarding
from app.orders import services as orders
from app.orders.models import Order
from app.points import operations as points
from app.points import queries as points_queries
from app.points import rules, services
from app.points.models import ExpiryReminder, PointsAccount, PointsEntry, PointsLot
from app.points.rules import DEFAULT_RULES
from app.readside import members as member_views
from app.tiers.models import TierChange
from app.uow import UnitOfWork
from tests.factories import MemberFactory
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules
from tests.factories.tiers import make_ladder
from tests.support.books import assert_books_agree, books_of, tier_code_of
from tests.support.rows import count_rows
from tests.support.settings import SECRET_KEY

T0 = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
OPERATOR = Actor(type="admin", name="ops-li", id=7)
PHONE = "13900139000"


def in_tx(uow: UnitOfWork, work: Callable[[Session], Any]) -> Any:
    """Run an operations-level step in its own committed unit of work."""
    with uow:
        answer = work(uow.session)
        uow.commit()
        return answer


def earn(uow: UnitOfWork, member_id: int, amount: int, **kw: Any) -> points.EarnResult:
    return in_tx(
        uow,
        lambda s: points.earn(
            s, member_id=member_id, points=amount, reason_code="order", note="test earn", **kw
        ),
    )


def spend(uow: UnitOfWork, member_id: int, amount: int, **kw: Any) -> PointsEntry:
    return in_tx(
        uow,
        lambda s: points.spend(
            s, member_id=member_id, points=amount, reason_code="redemption", note="test spend", **kw
        ),
    )


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def member(session: Session, senders: None, frozen: Any) -> Member:
    set_points_rules(session)
    return MemberFactory()


# --- earning ---


def test_an_earning_is_a_lot_with_its_expiry_and_an_entry_with_the_balance_after(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    result = earn(uow, member.id, 120)

    assert result.credited == 120
    assert result.settled_debt == 0
    books = assert_books_agree(session, member.id)
    assert books.balance == 120
    assert books.kinds() == ["earn"]
    assert books.entries[0].balance_after == 120
    (lot,) = books.lots
    assert (lot.points, lot.remaining, lot.entry_id) == (120, 120, books.entries[0].id)
    assert lot.expires_at == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 Shanghai


def test_days_expiry_from_the_rules(uow: UnitOfWork, session: Session, member: Member) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 90})

    earn(uow, member.id, 10)

    (lot,) = books_of(session, member.id).lots
    assert lot.expires_at == T0 + timedelta(days=90)


def test_earning_nothing_is_refused(uow: UnitOfWork, session: Session, member: Member) -> None:
    with pytest.raises(ValidationFailed):
        earn(uow, member.id, 0)
    assert books_of(session, member.id).entries == []


# --- spending ---


def test_a_spend_consumes_the_lots_that_expire_first(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    late = earn(uow, member.id, 100, expires_at=T0 + timedelta(days=300)).entries[0]
    soon = earn(uow, member.id, 50, expires_at=T0 + timedelta(days=10)).entries[0]
    middle = earn(uow, member.id, 40, expires_at=T0 + timedelta(days=100)).entries[0]

    entry = spend(uow, member.id, 70)

    assert (entry.kind, entry.delta, entry.balance_after) == ("spend", -70, 120)
    books = assert_books_agree(session, member.id)
    remaining = {lot.entry_id: lot.remaining for lot in books.lots}
    assert remaining == {soon.id: 0, middle.id: 20, late.id: 100}


def test_an_insufficient_spend_raises_and_changes_nothing(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 60)
    before = books_of(session, member.id)

    with pytest.raises(InsufficientPoints) as caught:
        spend(uow, member.id, 61)

    assert caught.value.details == {"balance": 60, "requested": 61}
    after = assert_books_agree(session, member.id)
    assert after.balance == 60
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    assert [lot.remaining for lot in after.lots] == [60]


def test_expired_but_unwritten_points_cannot_be_spent(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    earn(uow, member.id, 100, expires_at=T0 + timedelta(days=1))
    earn(uow, member.id, 30)
    frozen.shift(timedelta(days=2))
    with uow:
        assert points_queries.balance_of(uow.session, member.id) == 30

    with pytest.raises(InsufficientPoints):
        spend(uow, member.id, 31)
    entry = spend(uow, member.id, 30)

    assert entry.balance_after == 0
    books = assert_books_agree(session, member.id)
    assert books.kinds() == ["earn", "earn", "expire", "spend"]
    assert books.entries[2].delta == -100


def test_a_spend_with_a_used_key_answers_the_first_entry(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 100)
    first = spend(uow, member.id, 40, idempotency_key="till:k:1")

    again = spend(uow, member.id, 40, idempotency_key="till:k:1")

    assert again.id == first.id
    assert assert_books_agree(session, member.id).balance == 60


# --- reversing ---


def test_a_reversal_takes_from_the_orders_own_lot_first(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    other = earn(uow, member.id, 100, expires_at=T0 + timedelta(days=5)).entries[0]
    own = earn(uow, member.id, 50, order_id=4242).entries[0]

    result = in_tx(
        uow, lambda s: points.reverse(s, member_id=member.id, points=30, note="r", order_id=4242)
    )

    assert (result.reversed_points, result.debt_added) == (30, 0)
    books = assert_books_agree(session, member.id)
    assert {lot.entry_id: lot.remaining for lot in books.lots} == {other.id: 100, own.id: 20}


def test_a_reversal_beyond_the_balance_stops_at_zero_and_records_a_debt(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 50)
    spend(uow, member.id, 45)

    result = in_tx(uow, lambda s: points.reverse(s, member_id=member.id, points=30, note="r"))

    assert (result.reversed_points, result.debt_added) == (5, 25)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (0, 25)

    settled = earn(uow, member.id, 40)

    assert (settled.credited, settled.settled_debt) == (15, 25)
    books = assert_books_agree(session, member.id)
    assert (books.balance, books.debt) == (15, 0)
    assert books.entries[-1].kind == "reverse"
    assert books.entries[-1].reason_code == "debt_settlement"


# --- operator adjustments ---


def test_an_adjustment_is_a_ledger_entry_and_is_audited(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 20)

    entry = services.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=80, reason="补偿：系统故障"
    )

    assert (entry.kind, entry.delta, entry.balance_after) == ("adjust", 80, 100)
    # The member reads 积分调整; the stated reason is for operators; no one is named.
    assert (entry.reason_code, entry.reason, entry.note) == (
        "adjustment",
        "积分调整",
        "补偿：系统故障",
    )
    books = assert_books_agree(session, member.id)
    assert books.lots[-1].points == 80  # a positive adjustment is a lot of its own
    (audit,) = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "points.adjust", AuditEntry.target_id == str(member.id)
        )
    )
    assert (audit.actor_type, audit.actor_id, audit.actor_name) == ("admin", 7, "ops-li")
    assert audit.target_type == "member"
    assert audit.before == {"balance": 20}
    assert audit.after == {"balance": 100, "delta": 80, "reason": "补偿：系统故障"}


def test_a_negative_adjustment_spends_and_cannot_go_below_zero(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 50)

    entry = services.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=-30, reason="duplicate credit"
    )
    assert (entry.kind, entry.balance_after) == ("adjust", 20)
    with pytest.raises(InsufficientPoints):
        services.adjust_points(
            uow=uow, actor=OPERATOR, member_id=member.id, delta=-21, reason="too much"
        )

    assert assert_books_agree(session, member.id).balance == 20
    assert count_rows(session, AuditEntry, AuditEntry.action == "points.adjust") == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_adjustment_requires_a_reason(
    uow: UnitOfWork, session: Session, member: Member, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.adjust_points(
            uow=uow, actor=OPERATOR, member_id=member.id, delta=10, reason=reason
        )

    assert caught.value.details.get("field") == "reason"
    assert books_of(session, member.id).entries == []
    assert count_rows(session, AuditEntry, AuditEntry.action == "points.adjust") == 0


def test_a_zero_adjustment_is_refused(uow: UnitOfWork, session: Session, member: Member) -> None:
    with pytest.raises(ValidationFailed):
        services.adjust_points(uow=uow, actor=OPERATOR, member_id=member.id, delta=0, reason="x")
    assert count_rows(session, AuditEntry, AuditEntry.action == "points.adjust") == 0


def test_an_adjustment_audits_the_balance_the_member_could_spend(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    """Points past their expiry are gone even before the job writes them off: the audit's
    before and after, and the entry's balance_after, agree with what the card shows."""
    earn(uow, member.id, 100, expires_at=T0 + timedelta(days=1))
    frozen.shift(timedelta(days=2))

    entry = services.adjust_points(
        uow=uow, actor=OPERATOR, member_id=member.id, delta=10, reason="goodwill"
    )

    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "points.adjust")).one()
    assert audit.before == {"balance": 0}
    assert audit.after["balance"] == 10
    assert entry.balance_after == 10
    with uow:
        assert points_queries.balance_of(uow.session, member.id) == 10
    assert assert_books_agree(session, member.id).balance == 10


# --- the ledger as the member reads it ---


def test_the_ledger_lists_newest_first_in_pages(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    for amount in (10, 20, 30):
        earn(uow, member.id, amount)
    spend(uow, member.id, 5)

    first = services.list_ledger(uow=uow, member_id=member.id, before_id=None, limit=3)
    rest = services.list_ledger(uow=uow, member_id=member.id, before_id=first[-1].id, limit=3)

    assert [e.delta for e in first] == [-5, 30, 20]
    assert [e.balance_after for e in first] == [55, 60, 30]
    assert [e.delta for e in rest] == [10]


def test_the_card_shows_the_points_that_expire_soonest(
    uow: UnitOfWork, session: Session, member: Member
) -> None:
    earn(uow, member.id, 30, expires_at=T0 + timedelta(days=20))
    earn(uow, member.id, 12, expires_at=T0 + timedelta(days=20))
    earn(uow, member.id, 50, expires_at=T0 + timedelta(days=200))
    spend(uow, member.id, 10)

    with uow:
        expiring = points_queries.expiring_soonest(uow.session, member.id)

    assert expiring == [
        {"points": 32, "expires_at": T0 + timedelta(days=20)},
        {"points": 50, "expires_at": T0 + timedelta(days=200)},
    ]


def test_each_kind_of_entry_carries_its_reason_code_and_the_members_text(
    uow: UnitOfWork,
    session: Session,
    member: Member,
    frozen: Any,
    place_order: Callable[..., orders.OrderOutcome],
) -> None:
    """Every kind a member can meet in the ledger, newest first, each with the balance after
    it: a lot past its expiry is written off by the next spend, before that spend."""
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    place_order(("card_no", member.card_no), 20_000, external_id="O-A")  # 200, 30-day lot
    frozen.shift(timedelta(days=20))
    place_order(("card_no", member.card_no), 10_000, external_id="O-B")  # 100
    frozen.shift(timedelta(days=11))  # the first lot has expired, unwritten
    assert _till(uow, member.card_no, 40, "T-1").balance == 60
    orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id="O-B",
        external_id="R-B",
        amount_cents=5_000,
    )
    services.adjust_points(uow=uow, actor=OPERATOR, member_id=member.id, delta=15, reason="x")

    entries = services.list_ledger(uow=uow, member_id=member.id, before_id=None, limit=10)

    assert [(e.kind, e.delta, e.balance_after) for e in entries] == [
        ("adjust", 15, 25),
        ("reverse", -50, 10),
        ("spend", -40, 60),
        ("expire", -200, 100),
        ("earn", 100, 300),
        ("earn", 200, 200),
    ]
    assert [(e.reason_code, e.reason) for e in entries] == [
        ("adjustment", "积分调整"),
        ("refund", "订单退款"),
        ("redemption", "积分抵扣"),
        ("expiry", "积分过期"),
        ("order", "订单积分"),
        ("order", "订单积分"),
    ]
    ids = [entry.id for entry in entries]
    assert ids == sorted(ids, reverse=True)
    assert (entries[-1].created_at, entries[0].created_at) == (T0, T0 + timedelta(days=31))
    assert_books_agree(session, member.id)


def _card_points(uow: UnitOfWork, member_id: int) -> dict[str, Any]:
    card = member_views.get_card(uow=uow, member_id=member_id, secret=SECRET_KEY, qr_ttl_seconds=60)
    return card.points


def test_a_new_expiry_rule_applies_to_later_earnings_and_the_card_lists_both_lots(
    session: Session, uow: UnitOfWork, member: Member
) -> None:
    """Points rules apply to points earned from now on: a lot keeps the expiry it was
    earned with; the card shows the balance and the soonest expiries first."""
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    earn(uow, member.id, 1_500)
    set_points_rules(session, expiry={"kind": "end_of_next_year"})
    earn(uow, member.id, 150)

    assert _card_points(uow, member.id) == {
        "balance": 1_650,
        "expiring": [
            {"points": 1_500, "expires_at": T0 + timedelta(days=30)},
            {"points": 150, "expires_at": datetime(2026, 12, 31, 16, tzinfo=UTC)},
        ],
    }


def test_expired_points_leave_the_card_before_the_expiry_job_runs(
    session: Session, uow: UnitOfWork, member: Member, frozen: Any
) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    earn(uow, member.id, 100)
    frozen.shift(timedelta(days=30))

    assert _card_points(uow, member.id) == {"balance": 0, "expiring": []}
    assert books_of(session, member.id).kinds() == ["earn"]  # nothing written off yet


# --- the rules document ---


def test_the_default_rules_are_in_force_until_replaced_and_a_replace_is_audited(
    uow: UnitOfWork, session: Session
) -> None:
    assert services.get_points_rules(uow=uow) == DEFAULT_RULES
    document = DEFAULT_RULES | {"points_per_yuan": 2, "expiry": {"kind": "days", "days": 30}}

    answered = services.put_points_rules(
        uow=uow, actor=OPERATOR, rules=rules.parse_points_rules(document)
    )

    assert answered == document
    assert services.get_points_rules(uow=uow) == document
    (audit,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "points_rules.update"))
    assert (audit.actor_type, audit.actor_id, audit.actor_name) == ("admin", 7, "ops-li")
    assert (audit.target_type, audit.target_id) == ("settings", "points_rules")
    assert (audit.before, audit.after) == (DEFAULT_RULES, document)


# --- the expiry job ---


def test_expiry_writes_off_what_is_left_and_a_rerun_changes_nothing(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    earn(uow, member.id, 100)  # expires 2026-12-31 16:00 UTC
    spend(uow, member.id, 30)
    frozen.move_to(datetime(2026, 1, 1, 4, tzinfo=UTC))
    earn(uow, member.id, 40)  # earned in 2026: lives until 2027-12-31 16:00 UTC

    frozen.move_to(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))  # 23:59:59 in Shanghai
    assert services.expire_points(uow=uow) == {"members": 0, "points": 0}

    frozen.move_to(datetime(2026, 12, 31, 16, 0, 5, tzinfo=UTC))  # just after midnight
    first = services.expire_points(uow=uow)
    entries_after_first = len(books_of(session, member.id).entries)
    second = services.expire_points(uow=uow)

    assert first == {"members": 1, "points": 70}
    assert second == {"members": 0, "points": 0}
    books = assert_books_agree(session, member.id)
    assert len(books.entries) == entries_after_first
    assert books.kinds() == ["earn", "spend", "earn", "expire"]
    assert (books.entries[-1].delta, books.entries[-1].balance_after) == (-70, 40)
    assert [lot.remaining for lot in books.lots] == [0, 40]


def test_expiry_runs_in_batches_over_every_member(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    set_points_rules(session, expiry={"kind": "days", "days": 30})
    people = MemberFactory.create_batch(3)
    for index, person in enumerate(people):
        earn(uow, person.id, 10 * (index + 1))
    frozen.shift(timedelta(days=31))

    assert services.expire_points(uow=uow, batch_size=1) == {"members": 3, "points": 60}
    assert services.expire_points(uow=uow, batch_size=1) == {"members": 0, "points": 0}
    for person in people:
        books = assert_books_agree(session, person.id)
        assert books.balance == 0
        assert books.kinds() == ["earn", "expire"]


# --- reminders ---


def test_reminders_record_each_member_and_expiry_once_across_reruns(
    uow: UnitOfWork, session: Session, member: Member, frozen: Any
) -> None:
    set_points_rules(session, reminder_days_before=30)
    soon = T0 + timedelta(days=20)
    later = T0 + timedelta(days=40)
    earn(uow, member.id, 15, expires_at=soon)
    earn(uow, member.id, 25, expires_at=soon)
    earn(uow, member.id, 60, expires_at=later)
    spent = MemberFactory()  # its expiring lot is spent already: nothing to remind
    earn(uow, spent.id, 10, expires_at=soon)
    spend(uow, spent.id, 10)

    assert services.remind_expiring(uow=uow) == {"recorded": 1}
    assert services.remind_expiring(uow=uow) == {"recorded": 0}
    frozen.shift(timedelta(days=15))  # the later lot is now within 30 days
    assert services.remind_expiring(uow=uow, batch_size=1) == {"recorded": 1}
    assert services.remind_expiring(uow=uow, batch_size=1) == {"recorded": 0}

    session.expire_all()
    reminders = list(
        session.scalars(
            select(ExpiryReminder).where(ExpiryReminder.member_id.in_([member.id, spent.id]))
        )
    )
    assert sorted((r.member_id, r.expires_at, r.points) for r in reminders) == [
        (member.id, soon, 40),
        (member.id, later, 60),
    ]
    assert {r.status for r in reminders} == {"pending"}


# --- merging ---


def _till(uow: UnitOfWork, card_no: str, amount: int, external_id: str) -> Any:
    return orders.redeem_at_till(
        uow=uow,
        sender=SENDER,
        secret=SECRET_KEY,
        member=orders.MemberRef("card_no", card_no),
        points_to_spend=amount,
        external_id=external_id,
    )


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
    _till(uow, caller.card_no, 300, "T-1")
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
    _till(uow, loser.card_no, 100, "T-L")
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
    _till(uow, loser.card_no, 100, "T-L")
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
    first = _till(uow, loser.card_no, 40, "T-1")
    in_tx(
        uow,
        lambda session: member_ops.merge_members(
            session,
            loser=session.get(Member, loser.id),
            survivor=session.get(Member, survivor.id),
            reason="test",
        ),
    )

    retry = _till(uow, loser.card_no, 40, "T-1")  # the old card resolves to the survivor

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
    from app.retry import lost_a_race

    assert lost_a_race(raised.value)
