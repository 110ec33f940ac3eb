"""The sessions.purge job deletes sessions no unexpired token can name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.admins import sessions as admin_sessions
from app.admins.models import AdminSession
from app.container import Container
from app.members import sessions as member_sessions
from app.members.models import MemberSession
from app.ops.models import JobRun
from jobs.registry import find_job
from jobs.runner import run_job
from tests.factories import AdminFactory, MemberFactory

T0 = datetime(2026, 5, 4, 2, 0, 0, tzinfo=UTC)


def test_it_deletes_sessions_older_than_the_token_lifetime(
    deps: Container, session: Session
) -> None:
    job = find_job("sessions.purge")
    assert job is not None
    member, admin = MemberFactory(), AdminFactory()
    session.commit()
    ttl = timedelta(seconds=deps.config.token_ttl_seconds)
    with time_machine.travel(T0, tick=False) as traveller:
        old_member = member_sessions.open_session(uow=deps.uow(), member_id=member.id)
        old_admin = admin_sessions.open_session(uow=deps.uow(), admin_id=admin.id)
        traveller.shift(timedelta(days=1))
        new_member = member_sessions.open_session(uow=deps.uow(), member_id=member.id)
        new_admin = admin_sessions.open_session(uow=deps.uow(), admin_id=admin.id)
        traveller.shift(ttl - timedelta(days=1) + timedelta(seconds=1))

        assert run_job(deps, job) == "ok"

    run = session.scalars(select(JobRun).where(JobRun.job_id == "sessions.purge")).one()
    assert json.loads(run.detail or "{}") == {"member_sessions": 1, "admin_sessions": 1}
    session.expire_all()
    assert list(
        session.scalars(
            select(MemberSession.id).where(MemberSession.id.in_([old_member, new_member]))
        )
    ) == [new_member]
    assert list(
        session.scalars(select(AdminSession.id).where(AdminSession.id.in_([old_admin, new_admin])))
    ) == [new_admin]
