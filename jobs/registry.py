"""The declarative list of every scheduled job. Add a job here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.container import Container
from jobs import tasks


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[Container], dict[str, Any]]
    trigger: str  # "interval" | "cron"
    trigger_args: dict[str, Any]
    lock_seconds: int = 600  # longer than the job can take; the lock expires if a worker dies
    description: str = ""


JOBS: tuple[Job, ...] = (
    Job(
        "points.expire",
        tasks.expire_points,
        "cron",
        {"hour": 0, "minute": 5},
        lock_seconds=3 * 3600,
        description="Write off points past their expiry (just after midnight, brand time).",
    ),
    Job(
        "points.remind_expiring",
        tasks.remind_expiring_points,
        "cron",
        {"hour": 1, "minute": 0},
        lock_seconds=3 * 3600,
        description=(
            "Record members whose points expire within reminder_days_before; "
            "each gets a points.expiring event, sent as a notice by outbox.drain."
        ),
    ),
    Job(
        "outbox.drain",
        tasks.drain_outbox,
        "interval",
        {"seconds": 30},
        lock_seconds=900,
        description="Hand pending outbox events to their handlers (notices, timeline).",
    ),
    Job(
        "tiers.assess",
        tasks.assess_tiers,
        "cron",
        {"hour": 2, "minute": 0},
        lock_seconds=6 * 3600,
        description="Downgrade members below their tier once retention has run out.",
    ),
    Job(
        "idempotency.purge",
        tasks.purge_idempotency_records,
        "interval",
        {"minutes": 30},
        description="Delete Idempotency-Key records past their 24 h retention.",
    ),
    Job(
        "nonces.purge",
        tasks.purge_open_api_nonces,
        "interval",
        {"minutes": 5},
        description="Trim open-API nonces older than the timestamp window.",
    ),
    Job(
        "wechat_sim.purge",
        tasks.purge_simulator_codes,
        "interval",
        {"minutes": 10},
        description="Drop expired login/phone codes and tokens in the WeChat simulator.",
    ),
    Job(
        "sessions.purge",
        tasks.purge_sessions,
        "interval",
        {"hours": 1},
        description="Delete member and operator sessions older than the token lifetime.",
    ),
)


def find_job(job_id: str) -> Job | None:
    return next((job for job in JOBS if job.id == job_id), None)
