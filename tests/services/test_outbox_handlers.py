"""What the outbox's handlers do with the domain's events: the points-expiry notice
(through a Messenger: the fake, and WeChat's simulator) and the member timeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins.operations import Actor
from app.members.models import Member
from app.messaging.adapters import FakeMessenger
from app.messaging.handlers import expiry_reminder_handler
from app.messaging.ports import NoticeKind
from app.orders import services as orders
from app.outbox import services as outbox
from app.outbox.models import OutboxMessage
from app.outbox.rules import DrainPolicy
from app.points import operations as points
from app.points import services as points_services
from app.points.models import ExpiryReminder
from app.timeline import services as timeline
from app.timeline.handlers import TIMELINE_HANDLER
from app.timeline.models import TimelineEntry
from app.uow import UnitOfWork
from tests.factories import IdentityFactory, MemberFactory
from tests.factories.partners import SENDER
from tests.factories.settings import set_points_rules
from tests.factories.tiers import make_ladder
from tests.support.wechat import MP_APPID, MP_SECRET
from wechat_hooks.clients import make_wechat_client
from wechat_hooks.messenger import WeChatMessenger
from wechat_hooks.simulator import SimulatorServer

T0 = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
POLICY = DrainPolicy(max_attempts=3)
TEMPLATE = "tmpl-points-expiring"
SUBSCRIBE_SEND = "/cgi-bin/message/subscribe/send"


@pytest.fixture
def frozen() -> Iterator[Any]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def expiring_member(uow: UnitOfWork, openid: str | None, amount: int) -> Member:
    member = MemberFactory()
    if openid:
        IdentityFactory(member=member, app_id=MP_APPID, external_id=openid)
    with uow:
        points.earn(
            uow.session,
            member_id=member.id,
            points=amount,
            reason_code="order",
            note="test earn",
            expires_at=T0 + timedelta(days=10),
        )
        uow.commit()
    return member


def reminder_status(session: Session, member_id: int) -> str:
    session.expire_all()
    return session.scalars(
        select(ExpiryReminder.status).where(ExpiryReminder.member_id == member_id)
    ).one()


def test_the_expiry_reminder_goes_through_the_outbox_to_the_messenger(
    uow: UnitOfWork, session: Session, frozen: Any
) -> None:
    set_points_rules(session, reminder_days_before=30)
    member = expiring_member(uow, "o-expiring", 40)
    messenger = FakeMessenger()
    handler = expiry_reminder_handler(messenger, mp_appid=MP_APPID)

    assert points_services.remind_expiring(uow=uow) == {"recorded": 1}
    assert messenger.sent == []  # nothing leaves the process before the drain
    event = session.scalars(select(OutboxMessage).where(OutboxMessage.member_id == member.id)).one()
    assert event.topic == "points.expiring"
    first = outbox.drain(uow=uow, handlers=[handler], policy=POLICY)
    again = outbox.drain(uow=uow, handlers=[handler], policy=POLICY)

    assert first["handled"] == 1
    assert again["handled"] == 0
    [notice] = messenger.sent
    assert notice.kind is NoticeKind.POINTS_EXPIRING
    assert notice.openid == "o-expiring"
    assert notice.fields == {"points": "40", "expires_on": "2025-06-11"}
    assert notice.dedupe_id == f"outbox-{event.id}"
    assert reminder_status(session, member.id) == "sent"


def test_the_wechat_messenger_sends_a_subscribe_message_or_skips_without_consent(
    uow: UnitOfWork, session: Session, sim: SimulatorServer, frozen: Any
) -> None:
    set_points_rules(session, reminder_days_before=30)
    consenting = expiring_member(uow, "o-consents", 25)
    silent = expiring_member(uow, "o-silent", 30)  # no subscription: WeChat answers 43101
    no_wechat = expiring_member(uow, None, 5)  # registered at a till only
    sim.state.grant_subscription("o-consents", TEMPLATE, 1)
    client = make_wechat_client(MP_APPID, MP_SECRET, api_base=sim.base_url)
    messenger = WeChatMessenger(client, {NoticeKind.POINTS_EXPIRING: TEMPLATE})
    handler = expiry_reminder_handler(messenger, mp_appid=MP_APPID)

    points_services.remind_expiring(uow=uow)
    result = outbox.drain(uow=uow, handlers=[handler], policy=POLICY)

    assert result["handled"] == 3  # a recipient error is final: skipped, not retried
    [sent] = sim.state.sent(SUBSCRIBE_SEND)
    assert sent["to"] == "o-consents"
    assert sent["payload"]["template_id"] == TEMPLATE
    assert sent["payload"]["data"]["number1"] == {"value": "25"}
    assert reminder_status(session, consenting.id) == "sent"
    assert reminder_status(session, silent.id) == "skipped"
    assert reminder_status(session, no_wechat.id) == "skipped"


def test_a_transient_wechat_failure_is_retried(
    uow: UnitOfWork, session: Session, sim: SimulatorServer, frozen: Any
) -> None:
    set_points_rules(session, reminder_days_before=30)
    member = expiring_member(uow, "o-later", 25)
    sim.state.grant_subscription("o-later", TEMPLATE, 1)
    sim.state.add_fault(SUBSCRIBE_SEND, -1, 1)
    client = make_wechat_client(MP_APPID, MP_SECRET, api_base=sim.base_url)
    handler = expiry_reminder_handler(
        WeChatMessenger(client, {NoticeKind.POINTS_EXPIRING: TEMPLATE}), mp_appid=MP_APPID
    )
    points_services.remind_expiring(uow=uow)

    assert outbox.drain(uow=uow, handlers=[handler], policy=POLICY)["retried"] == 1
    assert reminder_status(session, member.id) == "pending"
    frozen.shift(timedelta(seconds=POLICY.backoff_seconds))
    assert outbox.drain(uow=uow, handlers=[handler], policy=POLICY)["handled"] == 1
    assert len(sim.state.sent(SUBSCRIBE_SEND)) == 1
    assert reminder_status(session, member.id) == "sent"


def kinds(entries: list[TimelineEntry]) -> list[str]:
    return [entry.kind for entry in reversed(entries)]


def test_the_timeline_tells_a_members_history_and_follows_a_merge(
    uow: UnitOfWork,
    session: Session,
    login: Callable[..., Any],
    bind: Callable[[int, str], Member],
    place_order: Callable[..., Any],
) -> None:
    set_points_rules(session)
    make_ladder()
    holder = login("o-holder").member
    bind(holder.id, "13800138000")
    order = place_order(("card_no", holder.card_no), 120_000, external_id="ORD-1")
    orders.record_refund(
        uow=uow,
        sender=SENDER,
        channel="pos",
        external_order_id="ORD-1",
        external_id="RF-1",
        amount_cents=20_000,
    )
    points_services.adjust_points(
        uow=uow,
        actor=Actor(type="admin", name="ops", id=1),
        member_id=holder.id,
        delta=5,
        reason="goodwill",
    )
    caller = login("o-caller").member
    outbox.drain(uow=uow, handlers=[TIMELINE_HANDLER], policy=POLICY)
    assert kinds(
        timeline.list_timeline(uow=uow, member_id=caller.id, before_id=None, limit=50)
    ) == ["member.joined"]

    bind(caller.id, "13800138000")  # the holder of the phone survives
    outbox.drain(uow=uow, handlers=[TIMELINE_HANDLER], policy=POLICY)

    entries = timeline.list_timeline(uow=uow, member_id=holder.id, before_id=None, limit=50)
    assert kinds(entries) == [
        "member.joined",
        "tier.changed",  # announced inside the order's transaction, before the order
        "order.recorded",
        "order.refunded",
        "points.adjusted",
        "member.joined",  # the caller's, moved by the merge step
        "member.merged",
    ]
    assert {entry.member_id for entry in entries} == {holder.id}
    by_kind = {entry.kind: entry.summary for entry in entries}
    assert by_kind["order.recorded"]["order_id"] == order.order_id
    assert by_kind["order.recorded"]["amount_cents"] == 120_000
    assert by_kind["tier.changed"]["to"] == "gold"
    assert by_kind["order.refunded"]["amount_cents"] == 20_000
    assert by_kind["points.adjusted"] == {
        "delta": 5,
        "balance_after": by_kind["points.adjusted"]["balance_after"],
        "reason": "goodwill",
    }
    assert by_kind["member.merged"] == {"from_member_id": caller.id, "reason": "phone"}
    # the merged member's id reads the survivor's timeline
    merged_view = timeline.list_timeline(uow=uow, member_id=caller.id, before_id=None, limit=2)
    assert [entry.id for entry in merged_view] == [entry.id for entry in entries[:2]]
