"""Seed a development database with a programme and members who have used it.

Everything goes through the use cases a real deployment runs (tiers, settings, partners,
orders, refunds, till spends, check-ins) or, for enrolment, the members' and points'
own steps inside one transaction: balances are never written directly, so each one
equals its ledger. Running it again changes nothing: members are found by their openid,
orders, refunds and spends are replayed by their external ids, a second check-in on the
same day is refused, and the programme is only written where none exists.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app import clock
from app.admins.operations import Actor
from app.checkins import services as checkins
from app.errors import LimitReached
from app.members import operations as members
from app.members.demo import demo_member_row
from app.members.models import PROVIDER_MINIPROGRAM, ReferenceKind
from app.orders import services as orders
from app.orders.intake import MemberRef
from app.partners import services as partners
from app.points import operations as points
from app.points import rules as points_rules
from app.points import services as points_services
from app.settings.models import SettingsDocument
from app.tiers import rules as tier_rules
from app.tiers import services as tiers
from app.uow import UnitOfWork

STORE_NAME = "演示门店"
STORE_CODE = "SH-001"
CHANNEL = "pos"
SHOWCASE_PHONE = "13800138000"  # the member the README looks up: a gold card with points

TIERS: tuple[dict[str, Any], ...] = (
    {
        "code": "regular",
        "name": "普通会员",
        "rank": 0,
        "threshold": 0,
        "benefits": {"points_multiplier_pct": 100},
    },
    {
        "code": "silver",
        "name": "银卡",
        "rank": 1,
        "threshold": 200_000,  # spend in cents over the rolling year: ¥2,000
        "benefits": {"points_multiplier_pct": 120, "discount_pct": 5},
    },
    {
        "code": "gold",
        "name": "金卡",
        "rank": 2,
        "threshold": 800_000,  # ¥8,000
        "benefits": {
            "points_multiplier_pct": 150,
            "discount_pct": 10,
            "free_shipping": True,
            "priority_service": True,
        },
    },
)
POINTS_RULES: dict[str, Any] = {
    "points_per_yuan": 1,
    "signup_bonus": 100,
    "birthday_month_multiplier_pct": 200,
    "checkin": {"base": 5, "streak_bonus": {"7": 20, "30": 100}},
    "expiry": {"kind": "end_of_next_year"},
    "reminder_days_before": 30,
}
PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("SCARF-01", "羊毛围巾", 25_800),
    ("SOCK-05", "羊毛袜", 9_900),
    ("KNIT-03", "针织开衫", 89_900),
    ("BAG-04", "托特包", 159_900),
    ("COAT-02", "双面羊绒大衣", 329_900),
)


@dataclass(frozen=True)
class DemoStore:
    """The seed's store system (an orders ``Sender``): a disabled partner of its own."""

    id: int
    trusted: bool = True

    def may_use_channel(self, channel: str) -> bool:
        return channel == CHANNEL


@dataclass(frozen=True)
class PlannedOrder:
    external_id: str
    days_ago: int
    sku: str
    name: str
    amount_cents: int


@dataclass(frozen=True)
class PlannedMember:
    openid: str
    unionid: str
    phone: str
    profile: dict[str, Any]
    orders: tuple[PlannedOrder, ...]
    checks_in: bool
    refunds_first_order: bool = False
    spends_at_till: int = 0


@dataclass
class SeedReport:
    tiers: int = 0
    settings: int = 0
    counts: Counter[str] = field(default_factory=Counter)


def plan_members(count: int, *, seed: int = 7) -> list[PlannedMember]:
    """The same members, profiles and purchases every time for a given count and seed."""
    rng = random.Random(seed)
    now = clock.now()
    return [_plan_member(rng, number, now) for number in range(1, count + 1)]


def _plan_member(rng: random.Random, number: int, now: datetime) -> PlannedMember:
    row = demo_member_row(rng, "0", now)
    profile = {k: row[k] for k in ("nickname", "gender", "city", "birthday", "registered_at")}
    if number == 1:  # the showcase: three coats over the year make a gold card
        picks = [PRODUCTS[4], PRODUCTS[0], PRODUCTS[4], PRODUCTS[3], PRODUCTS[4]]
    elif number % 5 == 2:  # about one in five spends enough for silver
        picks = [PRODUCTS[3], PRODUCTS[2], rng.choice(PRODUCTS[:3])]
    else:
        picks = [rng.choice(PRODUCTS[:3]) for _ in range(rng.randint(0, 3))]
    days = sorted((rng.randint(3, 330) for _ in picks), reverse=True)
    planned = tuple(
        PlannedOrder(f"DEMO-{number:04d}-{k}", day, sku, name, cents)
        for k, (day, (sku, name, cents)) in enumerate(zip(days, picks, strict=True), start=1)
    )
    registered: datetime = row["registered_at"]  # type: ignore[assignment]
    profile["registered_at"] = min(registered, now - timedelta(days=(days[0] if days else 0) + 1))
    return PlannedMember(
        openid=f"o-demo-{number:04d}",
        unionid=f"u-demo-{number:04d}",
        phone=SHOWCASE_PHONE if number == 1 else f"1390000{number:04d}",
        profile=profile,
        orders=planned,
        checks_in=number % 3 != 0,
        refunds_first_order=number % 7 == 3 and bool(planned),
        spends_at_till=500 if number == 1 else 0,
    )


def seed_programme(*, uow: UnitOfWork, actor: Actor) -> SeedReport:
    """The tier ladder when there is none, the points rules and tier policy when unset."""
    report = SeedReport()
    if not tiers.list_tiers(uow=uow):
        for fields in TIERS:
            tiers.create_tier(uow=uow, actor=actor, fields=dict(fields))
            report.tiers += 1
    with uow:
        unset = {
            key
            for key in (points.RULES_KEY, "tier_policy")
            if uow.session.get(SettingsDocument, key) is None
        }
    if points.RULES_KEY in unset:
        points_services.put_points_rules(
            uow=uow, actor=actor, rules=points_rules.parse_points_rules(POINTS_RULES)
        )
        report.settings += 1
    if "tier_policy" in unset:
        tiers.put_policy(
            uow=uow, actor=actor, policy=tier_rules.parse_tier_policy(tier_rules.DEFAULT_POLICY)
        )
        report.settings += 1
    return report


def seed_members(
    *,
    uow: UnitOfWork,
    redis: Any,
    actor: Actor,
    secret_key: str,
    appid: str,
    count: int,
    seed: int = 7,
) -> Counter[str]:
    """``count`` members with identities, orders, points, check-ins and tier history."""
    store = _demo_store(uow=uow, redis=redis, actor=actor, secret_key=secret_key)
    done: Counter[str] = Counter()
    for plan in plan_members(count, seed=seed):
        member_id, created = enrol_member(uow=uow, appid=appid, plan=plan)
        done["members"] += int(created)
        _shop(uow, store, secret_key, plan, done)
        if plan.checks_in:
            try:
                checkins.check_in(uow=uow, member_id=member_id)
                done["checkins"] += 1
            except LimitReached:
                pass
    return done


def enrol_member(*, uow: UnitOfWork, appid: str, plan: PlannedMember) -> tuple[int, bool]:
    """The member of ``plan.openid`` (created with its unionid, phone and sign-up bonus
    when absent), and whether it was created now."""
    with uow:
        session = uow.session
        identity = members.find_by_identity(
            session, provider=PROVIDER_MINIPROGRAM, app_id=appid, external_id=plan.openid
        )
        if identity is not None:
            return identity.member_id, False
        profile: dict[str, Any] = dict(plan.profile)
        if members.find_by_phone(session, plan.phone) is None:
            profile["phone"] = plan.phone
        if members.find_by_unionid(session, plan.unionid) is None:
            profile["unionid"] = plan.unionid
        member = members.create_member(session, registration_channel="miniprogram", **profile)
        members.attach_identity(
            session, member, provider=PROVIDER_MINIPROGRAM, app_id=appid, external_id=plan.openid
        )
        points.grant_signup_bonus(session, member.id)
        uow.commit()
        return member.id, True


def _shop(
    uow: UnitOfWork, store: DemoStore, secret: str, plan: PlannedMember, done: Counter[str]
) -> None:
    who = MemberRef(ReferenceKind.UNIONID, plan.unionid)
    today = clock.now().replace(hour=4, minute=0, second=0, microsecond=0)
    for order in plan.orders:
        outcome = orders.record_order(
            uow=uow,
            secret=secret,
            sender=store,
            channel=CHANNEL,
            external_id=order.external_id,
            member=who,
            paid_at=today - timedelta(days=order.days_ago),
            amount_cents=order.amount_cents,
            items=[
                {
                    "sku": order.sku,
                    "name": order.name,
                    "quantity": 1,
                    "amount_cents": order.amount_cents,
                }
            ],
            store_code=STORE_CODE,
        )
        done["orders"] += int(not outcome.replayed)
    if plan.refunds_first_order:
        first = plan.orders[0]
        refund = orders.record_refund(
            uow=uow,
            sender=store,
            channel=CHANNEL,
            external_order_id=first.external_id,
            external_id=f"{first.external_id}-R",
            amount_cents=first.amount_cents // 2,
        )
        done["refunds"] += int(not refund.replayed)
    if plan.spends_at_till:
        spend = orders.redeem_at_till(
            uow=uow,
            secret=secret,
            sender=store,
            member=who,
            channel=CHANNEL,
            points_to_spend=plan.spends_at_till,
            external_id=f"DEMO-SPEND-{plan.openid}",
            store_code=STORE_CODE,
        )
        done["till_spends"] += int(not spend.replayed)


def _demo_store(*, uow: UnitOfWork, redis: Any, actor: Actor, secret_key: str) -> DemoStore:
    """The seed's partner, created once and disabled at once: it signs no request."""
    found = [p for p in partners.list_partners(uow=uow) if p.name == STORE_NAME]
    if found:
        return DemoStore(found[0].id)
    credentials = partners.create_partner(
        uow=uow, actor=actor, name=STORE_NAME, secret_key=secret_key, channels=[CHANNEL]
    )
    summary = partners.disable_partner(
        uow=uow, redis=redis, actor=actor, app_key_or_id=credentials.app_key
    )
    return DemoStore(summary.id)
