"""`flask --app wsgi jobs list|run JOB_ID`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from app.web.deps import container
from jobs.registry import JOBS, find_job
from jobs.runner import run_job


def register_job_commands(app: Flask) -> None:
    app.cli.add_command(jobs_group)


@click.group("jobs", cls=AppGroup)
def jobs_group() -> None:
    """Scheduled jobs."""


@jobs_group.command("list")
def jobs_list() -> None:
    for job in JOBS:
        click.echo(f"{job.id:24} {job.trigger} {job.trigger_args}  {job.description}")


@jobs_group.command("run")
@click.argument("job_id")
def jobs_run(job_id: str) -> None:
    """Run one job now, under the same lock and record as the scheduler."""
    job = find_job(job_id)
    if job is None:
        raise click.BadParameter(f"unknown job; known: {', '.join(j.id for j in JOBS)}")
    outcome = run_job(container(), job)
    click.echo(f"{job_id}: {outcome}")
    if outcome == "failed":
        raise SystemExit(1)
