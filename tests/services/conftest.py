"""Fixtures for service tests: the real mini-program adapter against the simulator, the
store systems orders come from, the clock stopped at T0, the points rules, the member the
order tests find and the tier ladder, and committing sessions for the concurrency tests
(which need several real transactions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count as counter
from typing import Any

import pytest
import time_machine
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from app import clock
from app.db import make_session_factory
from app.members import services as members
from app.members.models import PROVIDER_CHANNEL, Member
from app.onboarding import services as onboarding
from app.orders import services as orders
from app.uow import UnitOfWork
from tests.factories import IdentityFactory, MemberFactory
from tests.factories.orders import item
from tests.factories.partners import SENDER, add_senders
from tests.factories.settings import set_points_rules, set_tier_policy
from tests.factories.tiers import make_ladder
from tests.support.clock import T0
from tests.support.rows import NewRows
from tests.support.settings import SECRET_KEY
from tests.support.wechat import MP_APPID, MP_SECRET, login_code, phone_code
from wechat_hooks.clients import make_wechat_client
from wechat_hooks.miniprogram import WeChatMiniProgramAuth
from wechat_hooks.simulator import SimulatorServer


@pytest.fixture
def mp_auth(sim: SimulatorServer) -> WeChatMiniProgramAuth:
    return WeChatMiniProgramAuth(make_wechat_client(MP_APPID, MP_SECRET, api_base=sim.base_url))


@pytest.fixture
def login(
    uow: UnitOfWork, mp_auth: WeChatMiniProgramAuth, sim: SimulatorServer
) -> Callable[..., onboarding.LoginResult]:
    """Log in as the mini-program would: a fresh wx.login code for ``openid`` each time."""

    def log_in(openid: str, unionid: str | None = None) -> onboarding.LoginResult:
        code = login_code(sim, openid, unionid)
        return onboarding.log_in(uow=uow, mp_auth=mp_auth, appid=MP_APPID, code=code)

    return log_in


@pytest.fixture
def bind(
    uow: UnitOfWork, mp_auth: WeChatMiniProgramAuth, sim: SimulatorServer
) -> Callable[[int, str], Member]:
    """Bind ``phone`` to a member through a fresh phone-number code."""

    def bind_phone(member_id: int, phone: str) -> Member:
        code = phone_code(sim, phone)
        return members.bind_phone(uow=uow, mp_auth=mp_auth, member_id=member_id, code=code)

    return bind_phone


@pytest.fixture
def rows(session: Session) -> NewRows:
    return NewRows(session)


@pytest.fixture
def committing_factory(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions that really commit, for tests with several threads. The test must clean up
    what it created with ``cleanup`` (below) so later tests see an empty database."""
    yield make_session_factory(engine)


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[Callable[[Any, Any], None]]:
    """Register ``(model, where-clause)`` pairs to delete after the test, pass or fail."""
    pending: list[tuple[Any, Any]] = []
    yield lambda model, where: pending.append((model, where))
    with engine.begin() as connection:
        for model, where in reversed(pending):
            connection.execute(delete(model).where(where))


@pytest.fixture
def senders(session: Session) -> None:
    """The partner rows behind SENDER and OTHER_SENDER, the store systems of service tests."""
    add_senders(session)


@pytest.fixture
def place_order(uow: UnitOfWork, senders: None) -> Callable[..., Any]:
    """``place_order(ref, amount_cents, external_id=..., channel="pos", paid_at=now)``:
    record_order as a store system calls it, with one item of the whole amount."""
    numbers = counter(1)

    def place(
        ref: Any,
        amount_cents: int,
        *,
        external_id: str | None = None,
        channel: str = "pos",
        paid_at: Any = None,
    ) -> Any:
        if isinstance(ref, tuple):
            ref = orders.MemberRef(*ref)
        return orders.record_order(
            uow=uow,
            secret=SECRET_KEY,
            sender=SENDER,
            channel=channel,
            external_id=external_id or f"ORD-{next(numbers):05d}",
            member=ref,
            paid_at=paid_at or clock.now(),
            amount_cents=amount_cents,
            items=[item(amount_cents)],
        )

    return place


@pytest.fixture
def frozen() -> Iterator[Any]:
    """The clock stopped at T0 (tests/support/clock.py): ``shift`` and ``move_to`` move it."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def rules_set(session: Session, senders: None, frozen: Any) -> Session:
    """The default points rules in force, the store systems in place, the clock at T0."""
    set_points_rules(session)
    return session


@pytest.fixture
def member(rules_set: Session) -> Member:
    """A member the till knows by card, phone, unionid and the POS channel's own id."""
    member = MemberFactory(phone="13800138000", unionid="u-member-1")
    IdentityFactory(member=member, provider=PROVIDER_CHANNEL, app_id="pos", external_id="POS-9")
    return member


@pytest.fixture
def ladder(session: Session, senders: None, frozen: Any) -> Session:
    """basic 0 (x1), gold 1000 yuan (x1.5), diamond 5000 yuan (x2); a year's spend,
    retained for 30 days."""
    set_points_rules(session)
    make_ladder()
    set_tier_policy(
        session,
        metric="spend_cents",
        window={"kind": "rolling_days", "days": 365},
        retention_days=30,
    )
    return session
