"""run_job: the Redis lock, the recorded run, and each registered job against the test app."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.container import Container
from app.idempotency import services as idem
from app.idempotency.models import IdempotencyRecord
from app.ops.models import JobRun
from app.partners import nonces
from jobs.registry import JOBS, Job, find_job
from jobs.runner import LOCK_PREFIX, run_job
from tests.support.wechat import login_code
from wechat_hooks.simulator import SimulatorServer
from wechat_hooks.simulator.state import CODE_TTL

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _job(body: Callable[[Container], dict[str, Any]], job_id: str = "test.job") -> Job:
    return Job(job_id, body, "interval", {"minutes": 1}, lock_seconds=30)


def _runs(session: Session, job_id: str) -> list[JobRun]:
    session.expire_all()
    return list(session.scalars(select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.id)))


def _only_run(session: Session, job_id: str) -> JobRun:
    (run,) = _runs(session, job_id)
    return run


def _detail(session: Session, job_id: str) -> dict[str, Any]:
    run = _only_run(session, job_id)
    assert run.outcome == "ok", run.detail
    return dict(json.loads(run.detail or "{}"))


# the runner


def test_a_run_is_recorded_with_its_outcome_and_result(deps: Container, session: Session) -> None:
    calls: list[Container] = []

    def body(d: Container) -> dict[str, Any]:
        calls.append(d)
        return {"done": 3, "note": "会员"}

    with time_machine.travel(T0, tick=False):
        outcome = run_job(deps, _job(body))

    assert outcome == "ok"
    assert calls == [deps]
    run = _only_run(session, "test.job")
    assert run.outcome == "ok"
    assert json.loads(run.detail or "") == {"done": 3, "note": "会员"}
    assert run.host
    assert run.started_at == run.finished_at == T0
    assert not deps.redis.exists(LOCK_PREFIX + "test.job")  # released


def test_a_failing_job_is_recorded_as_failed_and_does_not_raise(
    deps: Container, session: Session
) -> None:
    def body(_: Container) -> dict[str, Any]:
        raise RuntimeError("the batch blew up")

    outcome = run_job(deps, _job(body))

    assert outcome == "failed"
    run = _only_run(session, "test.job")
    assert run.outcome == "failed"
    assert "RuntimeError" in (run.detail or "")
    assert "the batch blew up" in (run.detail or "")
    assert run.finished_at is not None
    # The lock went with the failure: the next firing runs.
    assert run_job(deps, _job(lambda _: {})) == "ok"


def test_a_job_locked_elsewhere_is_skipped_and_recorded(deps: Container, session: Session) -> None:
    calls: list[str] = []
    other_process = deps.redis.lock(LOCK_PREFIX + "test.job", timeout=60, blocking=False)
    assert other_process.acquire(blocking=False)

    outcome = run_job(deps, _job(lambda _: calls.append("ran") or {}))

    assert outcome == "skipped"
    assert calls == []
    run = _only_run(session, "test.job")
    assert (run.outcome, run.detail) == ("skipped", "locked")
    assert run.finished_at is not None
    assert other_process.owned()  # the skipped run did not take or break the other's lock
    other_process.release()
    assert run_job(deps, _job(lambda _: calls.append("ran") or {})) == "ok"
    assert calls == ["ran"]


def test_the_lock_is_held_while_the_job_runs(deps: Container) -> None:
    seen: dict[str, Any] = {}

    def body(d: Container) -> dict[str, Any]:
        seen["held"] = bool(d.redis.exists(LOCK_PREFIX + "test.job"))
        seen["ttl"] = d.redis.ttl(LOCK_PREFIX + "test.job")
        seen["nested"] = run_job(d, _job(lambda _: {}))  # a second worker firing now
        return {}

    assert run_job(deps, _job(body)) == "ok"
    assert seen["held"] is True
    assert 0 < seen["ttl"] <= 30
    assert seen["nested"] == "skipped"


# the registry


def test_job_ids_are_unique_and_findable() -> None:
    ids = [job.id for job in JOBS]

    assert len(ids) == len(set(ids))
    assert ids, "no jobs registered"
    for job in JOBS:
        assert find_job(job.id) is job
        assert job.trigger in ("interval", "cron")
        assert job.lock_seconds > 0
    assert find_job("no.such.job") is None


@pytest.mark.parametrize("job", JOBS, ids=lambda job: job.id)
def test_every_registered_job_runs_ok_against_the_test_app(
    deps: Container, session: Session, job: Job
) -> None:
    assert run_job(deps, job) == "ok"
    assert isinstance(_detail(session, job.id), dict)


# the jobs themselves


def test_idempotency_purge_deletes_expired_records(deps: Container, session: Session) -> None:
    job = find_job("idempotency.purge")
    assert job is not None
    with time_machine.travel(T0, tick=False) as traveller:
        for key in ("old", "recent"):  # answered keys are kept for the retention
            with deps.uow() as uow:
                record = idem.claim(uow.session, scope="jobs-test:1", key=key, request_hash="h")
                idem.answer(uow.session, record, status_code=200, body="{}")
                uow.commit()
            traveller.shift(timedelta(hours=12))
        traveller.shift(idem.RETENTION - timedelta(hours=24) + timedelta(seconds=1))

        assert run_job(deps, job) == "ok"

    assert _detail(session, "idempotency.purge") == {"deleted": 1}
    session.expire_all()
    kept = session.scalars(
        select(IdempotencyRecord.key).where(IdempotencyRecord.scope == "jobs-test:1")
    )
    assert list(kept) == ["recent"]


def test_nonces_purge_trims_nonces_older_than_the_window(deps: Container, session: Session) -> None:
    job = find_job("nonces.purge")
    assert job is not None
    window = deps.config.open_api_clock_skew_seconds
    now = int(T0.timestamp())
    with time_machine.travel(T0, tick=False):
        for app_key, nonce, ts in [
            ("hk_pos", "too-old", now - window - 1),
            ("hk_pos", "at-the-edge", now - window),
            ("hk_pos", "fresh", now),
            ("hk_erp", "ancient", now - 10 * window),
        ]:
            assert nonces.claim_nonce(
                deps.redis, app_key=app_key, nonce=nonce, timestamp=ts, window=window
            )

        assert run_job(deps, job) == "ok"

        # (inside the frozen time: the keys' TTLs count from it)
        assert set(deps.redis.zrange(nonces.KEY_PREFIX + "hk_pos", 0, -1)) == {
            "at-the-edge",
            "fresh",
        }
        assert deps.redis.zcard(nonces.KEY_PREFIX + "hk_erp") == 0
        # A nonce that is still inside the window stays used.
        assert not nonces.claim_nonce(
            deps.redis, app_key="hk_pos", nonce="fresh", timestamp=now, window=window
        )

    assert _detail(session, "nonces.purge") == {"deleted": 2}


def test_wechat_sim_purge_removes_expired_codes_from_the_simulator(
    deps: Container, session: Session, sim: SimulatorServer
) -> None:
    job = find_job("wechat_sim.purge")
    assert job is not None
    start = time.time()
    with time_machine.travel(start, tick=False) as traveller:
        expiring = login_code(sim, "o-alice")
        traveller.shift(CODE_TTL / 2)
        lasting = login_code(sim, "o-bob")
        traveller.shift(CODE_TTL / 2)

        assert run_job(deps, job) == "ok"

    assert expiring not in sim.state.codes
    assert lasting in sim.state.codes
    assert _detail(session, "wechat_sim.purge")["purged"]["codes"] == 1


def test_wechat_sim_purge_never_runs_without_a_simulator(
    deps: Container, session: Session, sim: SimulatorServer
) -> None:
    job = find_job("wechat_sim.purge")
    assert job is not None
    code = login_code(sim, "o-alice")
    sim.state.codes[code].expires_at = 0  # long expired
    deps.config = deps.config.with_overrides(wechat_api_base=None)

    assert run_job(deps, job) == "ok"

    assert code in sim.state.codes
    assert "skipped" in _detail(session, "wechat_sim.purge")
