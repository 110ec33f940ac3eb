"""The demo seed: a programme and members with a history, through the real use cases;
running it again adds nothing, and every balance equals its ledger."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.admins.operations import CLI
from app.checkins.models import Checkin
from app.demo import seed as demo
from app.members.models import PROVIDER_MINIPROGRAM, Member, MemberIdentity
from app.orders.models import Order, Refund
from app.partners.models import Partner
from app.points.models import PointsAccount, PointsEntry, PointsLot
from app.settings.models import SettingsDocument
from app.tiers.models import MemberTier, Tier, TierChange
from app.uow import UnitOfWork
from tests.support.rows import count_rows
from tests.support.wechat import MP_APPID

MODELS = (
    Tier,
    SettingsDocument,
    Partner,
    Member,
    MemberIdentity,
    Order,
    Refund,
    PointsEntry,
    PointsLot,
    Checkin,
    MemberTier,
    TierChange,
)


def _seed(uow: UnitOfWork, redis: Any, members: int = 12) -> None:
    demo.seed_programme(uow=uow, actor=CLI)
    demo.seed_members(
        uow=uow,
        redis=redis,
        actor=CLI,
        secret_key="s" * 32,
        appid=MP_APPID,
        count=members,
    )


def _counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {model.__tablename__: count_rows(session, model) for model in MODELS}


def test_the_seed_writes_a_programme_and_members_with_a_history(
    uow: UnitOfWork, session: Session, redis: Any
) -> None:
    _seed(uow, redis)

    assert [t.name for t in session.scalars(select(Tier).order_by(Tier.rank))] == [
        "普通会员",
        "银卡",
        "金卡",
    ]
    showcase = session.scalars(select(Member).where(Member.phone == demo.SHOWCASE_PHONE)).one()
    assert showcase.unionid == "u-demo-0001"
    assert count_rows(
        session,
        MemberIdentity,
        MemberIdentity.member_id == showcase.id,
        MemberIdentity.provider == PROVIDER_MINIPROGRAM,
        MemberIdentity.external_id == "o-demo-0001",
    )
    assert session.get(MemberTier, showcase.id).tier_code == "gold"  # type: ignore[union-attr]
    assert [
        c.to_code
        for c in session.scalars(
            select(TierChange).where(TierChange.member_id == showcase.id).order_by(TierChange.id)
        )
    ] == ["silver", "gold"]
    reasons = set(session.scalars(select(PointsEntry.reason_code)))
    assert {"signup", "order", "refund", "redemption", "checkin"} <= reasons
    assert count_rows(session, Checkin) > 0
    assert count_rows(session, Refund) > 0
    store = session.scalars(select(Partner).where(Partner.name == demo.STORE_NAME)).one()
    assert store.active is False  # it signs no request


def test_every_seeded_balance_equals_its_ledger(
    uow: UnitOfWork, session: Session, redis: Any
) -> None:
    _seed(uow, redis)

    accounts = list(session.scalars(select(PointsAccount)))
    assert len(accounts) == 12
    for account in accounts:
        entries = list(
            session.scalars(
                select(PointsEntry)
                .where(PointsEntry.member_id == account.member_id)
                .order_by(PointsEntry.id)
            )
        )
        remaining = session.scalar(
            select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
                PointsLot.member_id == account.member_id
            )
        )
        assert account.debt == 0
        assert account.balance == sum(e.delta for e in entries) == entries[-1].balance_after
        assert account.balance == remaining
        assert account.balance > 0


def test_seeding_again_adds_nothing(uow: UnitOfWork, session: Session, redis: Any) -> None:
    _seed(uow, redis)
    first = _counts(session)

    _seed(uow, redis)

    assert _counts(session) == first
    assert first["members"] == 12


def test_the_cli_seeds_and_says_what_it_did(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    args = ["seed-demo", "--members", "0", "--story-members", "6"]

    with app.app_context():  # as `flask` pushes one for every command
        first = runner.invoke(args=args)
        again = runner.invoke(args=args)

    assert first.exit_code == 0, first.output
    assert "programme: 3 tiers, 2 settings documents" in first.output
    assert "members with history: 6 new" in first.output
    assert again.exit_code == 0, again.output
    assert "programme: 0 tiers, 0 settings documents" in again.output
    assert "members with history: 0 new, 0 orders, 0 refunds" in again.output
    assert count_rows(session, Member) == 6
