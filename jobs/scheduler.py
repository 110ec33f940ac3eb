"""The APScheduler process built from the declarative job list."""

from __future__ import annotations

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from app import clock
from app.container import Container
from jobs.registry import JOBS
from jobs.runner import run_job


def build_scheduler(app: Flask) -> BlockingScheduler:
    deps: Container = app.extensions["huiyuan"]
    scheduler = BlockingScheduler(timezone=clock.business_tz())
    for job in JOBS:
        scheduler.add_job(
            run_job,
            trigger=job.trigger,
            args=(deps, job),
            id=job.id,
            name=job.description or job.id,
            coalesce=True,  # a backlog after downtime runs once, not N times
            max_instances=1,
            misfire_grace_time=300,
            **job.trigger_args,
        )
    return scheduler
