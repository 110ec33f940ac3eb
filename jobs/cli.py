"""`flask --app wsgi jobs list|run JOB_ID`."""

from __future__ import annotations

import json

import click
from flask import Flask

from app.cli_base import CommandError, Group
from app.web.deps import container
from jobs.registry import JOBS
from jobs.runner import run_job_reporting


def register_job_commands(app: Flask) -> None:
    app.cli.add_command(jobs_group)


@click.group("jobs", cls=Group)
def jobs_group() -> None:
    """Scheduled jobs (the jobs process, `python -m jobs`, runs them on schedule)."""


@jobs_group.command("list")
def jobs_list() -> None:
    """Every job, one a line: id, trigger and its schedule, what it does."""
    for job in JOBS:
        click.echo(f"{job.id:24} {job.trigger} {job.trigger_args}  {job.description}")


@jobs_group.command("run")
@click.argument("job_id", type=click.Choice([job.id for job in JOBS]))
def jobs_run(job_id: str) -> None:
    """Run the job JOB_ID now, under the same lock and record as the scheduler, and print
    what it did as JSON: {"job", "outcome": "ok", "result"}. A failed job exits 1 with one
    line; one that another process is running now is skipped ({"outcome": "skipped"})."""
    job = {job.id: job for job in JOBS}[job_id]
    report = run_job_reporting(container(), job)
    if report.outcome == "failed":
        raise CommandError(f"job_failed: {job_id}: {report.error}")
    row = {"job": job_id, "outcome": report.outcome, "result": report.result}
    if report.outcome == "skipped":
        row["reason"] = report.error
    click.echo(json.dumps(row, ensure_ascii=False))
