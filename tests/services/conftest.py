"""Fixtures for service tests: the real mini-program adapter against the simulator, and
committing sessions for the concurrency tests (which need several real transactions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.admins.models import AdminUser, AuditEntry
from app.db import make_session_factory
from app.idempotency.models import IdempotencyRecord
from app.members import services as members
from app.members.models import Member, MemberIdentity, MemberMerge
from app.onboarding import services as onboarding
from app.partners.models import Partner
from app.uow import UnitOfWork
from tests.conftest import MP_APPID, MP_SECRET
from tests.helpers import login_code, phone_code
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


def count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


COUNTED = (Member, MemberIdentity, MemberMerge, IdempotencyRecord, AdminUser, AuditEntry, Partner)


class NewRows:
    """Rows added since the test began. Counting from a baseline keeps a row that some other
    committing test failed to delete out of this test's sums."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._start = {model: count(session, model) for model in COUNTED}

    def added(self, model: Any) -> int:
        self._session.expire_all()
        return count(self._session, model) - self._start[model]


@pytest.fixture
def rows(session: Session) -> NewRows:
    return NewRows(session)


def reload(session: Session, model: Any, row_id: int) -> Any:
    """The row as the database has it now (services wrote it through other sessions)."""
    session.expire_all()
    return session.get(model, row_id)


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


# --- The value core (orders, points ledger, tiers, check-ins): factories and shortcuts ---


@pytest.fixture
def value_session(session: Session) -> Iterator[Session]:
    """The arranging session with tests/factories_value.py's factories bound to it too."""
    from tests.factories_value import VALUE_FACTORIES, add_senders

    for factory_class in VALUE_FACTORIES:
        factory_class._meta.sqlalchemy_session = session
    add_senders(session)
    yield session
    for factory_class in VALUE_FACTORIES:
        factory_class._meta.sqlalchemy_session = None


@pytest.fixture
def place_order(uow: UnitOfWork, value_session: Session) -> Callable[..., Any]:
    """``place_order(ref, amount_cents, external_id=..., channel="pos", paid_at=now)``:
    record_order as a store system calls it, with one item of the whole amount."""
    from itertools import count as counter

    from app import clock
    from app.orders import services as orders
    from tests.factories_value import SENDER, item
    from tests.settings import SECRET_KEY

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
