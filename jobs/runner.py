"""Run one job: take its Redis lock, record the run, never let a failure escape."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

from app.container import Container
from app.ops import services as runs
from jobs.registry import Job

log = logging.getLogger("huiyuan.jobs")
LOCK_PREFIX = "jobs:lock:"


@dataclass(frozen=True)
class JobReport:
    outcome: str  # ok | failed | skipped (another process holds the lock)
    result: dict[str, Any] | None = None  # what the job did, when ok
    error: str | None = None  # why it failed, or why it was skipped


def run_job(deps: Container, job: Job) -> str:
    """Answer the outcome: ok, failed or skipped (another process holds the lock)."""
    return run_job_reporting(deps, job).outcome


def run_job_reporting(deps: Container, job: Job) -> JobReport:
    """Run the job as ``run_job`` does; answer what it did, or why not."""
    host = socket.gethostname()
    lock = deps.redis.lock(LOCK_PREFIX + job.id, timeout=job.lock_seconds, blocking=False)
    if not lock.acquire(blocking=False):
        runs.record_skipped_run(uow=deps.uow(), job_id=job.id, host=host, reason="locked")
        log.info("job skipped: another process runs it", extra={"job": job.id})
        return JobReport("skipped", error="another process is running it")
    try:
        return _run_locked(deps, job, host)
    finally:
        _release(lock, job)


def _run_locked(deps: Container, job: Job, host: str) -> JobReport:
    run_id = runs.start_job_run(uow=deps.uow(), job_id=job.id, host=host)
    try:
        result: dict[str, Any] = job.run(deps)
    except Exception as error:
        log.exception("job failed", extra={"job": job.id})
        runs.finish_job_run(uow=deps.uow(), run_id=run_id, outcome="failed", detail=repr(error))
        return JobReport("failed", error=repr(error))
    runs.finish_job_run(
        uow=deps.uow(), run_id=run_id, outcome="ok", detail=json.dumps(result, ensure_ascii=False)
    )
    log.info("job done", extra={"job": job.id, "result": result})
    return JobReport("ok", result=result)


def _release(lock: Any, job: Job) -> None:
    try:
        lock.release()
    except Exception:  # expired while running: another process may hold it now; leave it
        log.warning("job lock had expired before release", extra={"job": job.id})
