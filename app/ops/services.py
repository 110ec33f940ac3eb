"""Recording job runs: one row per run, written at its start and at its end."""

from __future__ import annotations

from sqlalchemy import select

from app import clock
from app.ops.models import JobRun, RunOutcome
from app.uow import UnitOfWork


def start_job_run(*, uow: UnitOfWork, job_id: str, host: str) -> int:
    with uow:
        run = JobRun(job_id=job_id, host=host, outcome=RunOutcome.RUNNING)
        uow.session.add(run)
        uow.commit()
        return run.id


def finish_job_run(*, uow: UnitOfWork, run_id: int, outcome: str, detail: str | None) -> None:
    with uow:
        run = uow.session.get(JobRun, run_id)
        if run is None:
            return
        run.outcome = outcome
        run.detail = (detail or "")[:4000] or None
        run.finished_at = clock.now()
        uow.commit()


def record_skipped_run(*, uow: UnitOfWork, job_id: str, host: str, reason: str) -> None:
    with uow:
        now = clock.now()
        uow.session.add(
            JobRun(
                job_id=job_id,
                host=host,
                outcome="skipped",
                detail=reason,
                started_at=now,
                finished_at=now,
            )
        )
        uow.commit()


def recent_runs(*, uow: UnitOfWork, job_id: str | None = None, limit: int = 50) -> list[JobRun]:
    with uow:
        query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
        if job_id:
            query = query.where(JobRun.job_id == job_id)
        return list(uow.session.scalars(query))
