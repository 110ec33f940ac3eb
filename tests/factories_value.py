"""Factories and row readers for the value core (orders, points, tiers, check-ins).

The ``value_session`` fixture (tests/services/conftest.py) binds these factories to the
test's session, as tests/conftest.py's ``session`` fixture does for tests/factories.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import factory
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.points import rules as points_rules
from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.settings.models import SettingsDocument
from app.tiers import rules as tier_rules
from app.tiers.models import MemberTier, Tier
from tests.factories import _Base


class TierFactory(_Base):
    class Meta:
        model = Tier

    code = factory.Sequence(lambda n: f"tier{n}")
    name = factory.LazyAttribute(lambda tier: tier.code.title())
    rank = factory.Sequence(lambda n: n + 1)
    threshold = 0
    benefits = factory.LazyFunction(lambda: {"points_multiplier_pct": 100})


class SettingsDocumentFactory(_Base):
    class Meta:
        model = SettingsDocument

    key = "points_rules"
    value = factory.LazyFunction(dict)


VALUE_FACTORIES = (TierFactory, SettingsDocumentFactory)

# The ladder most tier tests use: thresholds are spend in cents over the window.
LADDER = (
    ("basic", "普卡", 1, 0, 100),
    ("gold", "金卡", 2, 100_000, 150),
    ("diamond", "钻石", 3, 500_000, 200),
)


def make_ladder(session: Session) -> list[Tier]:
    return [
        TierFactory(
            code=code,
            name=name,
            rank=rank,
            threshold=threshold,
            benefits={"points_multiplier_pct": pct, "discount_pct": 100},
        )
        for code, name, rank, threshold, pct in LADDER
    ]


def set_points_rules(session: Session, **changes: Any) -> dict[str, Any]:
    """Store the default points rules with ``changes`` applied; answers the document."""
    document = {**points_rules.DEFAULT_RULES, **changes}
    row = session.get(SettingsDocument, "points_rules")
    if row is None:
        SettingsDocumentFactory(key="points_rules", value=document)
    else:
        row.value = document
        session.flush()
    return document


def set_tier_policy(session: Session, **changes: Any) -> dict[str, Any]:
    document = {**tier_rules.DEFAULT_POLICY, **changes}
    row = session.get(SettingsDocument, "tier_policy")
    if row is None:
        SettingsDocumentFactory(key="tier_policy", value=document)
    else:
        row.value = document
        session.flush()
    return document


@dataclass(frozen=True)
class Books:
    """A member's points as the database has them now."""

    balance: int
    debt: int
    ledger_sum: int
    open_lots_sum: int
    entries: list[PointsEntry]
    lots: list[PointsLot]

    def kinds(self) -> list[str]:
        return [entry.kind for entry in self.entries]


def books_of(session: Session, member_id: int) -> Books:
    session.expire_all()
    account = session.get(PointsAccount, member_id)
    entries = list(
        session.scalars(
            select(PointsEntry).where(PointsEntry.member_id == member_id).order_by(PointsEntry.id)
        )
    )
    lots = list(
        session.scalars(
            select(PointsLot).where(PointsLot.member_id == member_id).order_by(PointsLot.id)
        )
    )
    return Books(
        balance=account.balance if account else 0,
        debt=account.debt if account else 0,
        ledger_sum=sum(entry.delta for entry in entries),
        open_lots_sum=sum(lot.remaining for lot in lots if lot.remaining > 0),
        entries=entries,
        lots=lots,
    )


def assert_books_agree(session: Session, member_id: int) -> Books:
    """Invariant 1: balance = sum of the ledger = sum of the open lots, never negative; every
    entry's balance_after is the running sum of the deltas up to it."""
    books = books_of(session, member_id)
    assert books.balance == books.ledger_sum == books.open_lots_sum, books
    assert books.balance >= 0
    assert books.debt >= 0
    running = 0
    for entry in books.entries:
        running += entry.delta
        assert entry.balance_after == running, (entry.id, entry.kind, entry.balance_after)
    assert all(0 <= lot.remaining <= lot.points for lot in books.lots)
    return books


def tier_code_of(session: Session, member_id: int) -> str | None:
    session.expire_all()
    row = session.get(MemberTier, member_id)
    return row.tier_code if row is not None else None


def count_rows(session: Session, model: Any, *where: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def item(amount_cents: int, sku: str = "SKU-1") -> dict[str, Any]:
    return {
        "sku": sku,
        "name": "茶叶礼盒",
        "category": "tea",
        "brand": "huiyuan",
        "quantity": 1,
        "amount_cents": amount_cents,
    }


# --- the partners store systems call through: service tests pass one as the sender ---


@dataclass(frozen=True)
class StoreSender:
    """What the open API hands the order services: a partner's id and rights."""

    id: int
    trusted: bool = True
    channels: tuple[str, ...] | None = None

    def may_use_channel(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels


# Fixed ids, inserted by add_senders into each test's rolled-back transaction.
SENDER = StoreSender(id=900_001)
OTHER_SENDER = StoreSender(id=900_002)


def add_senders(session: Session) -> None:
    from app.partners.models import Partner

    for sender in (SENDER, OTHER_SENDER):
        if session.get(Partner, sender.id) is None:
            session.add(
                Partner(
                    id=sender.id,
                    name=f"store system {sender.id}",
                    app_key=f"hk_test_{sender.id}",
                    secret_encrypted="not used by service tests",
                    trusted=sender.trusted,
                )
            )
    session.flush()
