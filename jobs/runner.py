"""Run one job: take its Redis lock, record the run, never let a failure escape."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

from app.container import Container
from app.ops import services as runs
from jobs.registry import Job

log = logging.getLogger("huiyuan.jobs")
LOCK_PREFIX = "jobs:lock:"


def run_job(deps: Container, job: Job) -> str:
    """Answer the outcome: ok, failed or skipped (another process holds the lock)."""
    host = socket.gethostname()
    lock = deps.redis.lock(LOCK_PREFIX + job.id, timeout=job.lock_seconds, blocking=False)
    if not lock.acquire(blocking=False):
        runs.record_skipped_run(uow=deps.uow(), job_id=job.id, host=host, reason="locked")
        log.info("job skipped: another process runs it", extra={"job": job.id})
        return "skipped"
    try:
        return _run_locked(deps, job, host)
    finally:
        _release(lock, job)


def _run_locked(deps: Container, job: Job, host: str) -> str:
    run_id = runs.start_job_run(uow=deps.uow(), job_id=job.id, host=host)
    try:
        result: dict[str, Any] = job.run(deps)
    except Exception as error:
        log.exception("job failed", extra={"job": job.id})
        runs.finish_job_run(uow=deps.uow(), run_id=run_id, outcome="failed", detail=repr(error))
        return "failed"
    runs.finish_job_run(
        uow=deps.uow(), run_id=run_id, outcome="ok", detail=json.dumps(result, ensure_ascii=False)
    )
    log.info("job done", extra={"job": job.id, "result": result})
    return "ok"


def _release(lock: Any, job: Job) -> None:
    try:
        lock.release()
    except Exception:  # expired while running: another process may hold it now; leave it
        log.warning("job lock had expired before release", extra={"job": job.id})
