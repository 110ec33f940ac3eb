"""`flask --app wsgi jobs list|run JOB_ID`."""

from __future__ import annotations

import json

import click
from flask import Flask

from app.cli_base import CommandError, Group
from app.outbox import services as outbox
from app.web.deps import container
from jobs.registry import JOBS
from jobs.runner import run_job_reporting


def register_job_commands(app: Flask) -> None:
    app.cli.add_command(jobs_group)
    app.cli.add_command(outbox_group)


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


@click.group("outbox", cls=Group)
def outbox_group() -> None:
    """Domain events waiting for, or given up by, the outbox drain."""


@outbox_group.command("list")
@click.option("--dead", is_flag=True, help="Only dead letters (attempts exhausted).")
@click.option("--pending", is_flag=True, help="Only messages not yet handled.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="How many messages at most.",
)
def outbox_list(dead: bool, pending: bool, limit: int) -> None:
    """Newest messages first: id, topic, member, attempts, state, last error."""
    for message in outbox.list_messages(
        uow=container().uow(), dead=dead, pending=pending, limit=limit
    ):
        state = "dead" if message.dead_at else "handled" if message.handled_at else "pending"
        click.echo(
            f"{message.id:>8} {message.topic:20} member={message.member_id} "
            f"attempts={message.attempts} {state} {message.last_error or ''}".rstrip()
        )


@outbox_group.command("retry")
@click.argument("message_id", type=int)
def outbox_retry(message_id: int) -> None:
    """Put a dead letter back in the queue; the next drain tries it again."""
    message = outbox.retry_message(uow=container().uow(), message_id=message_id)
    click.echo(f"{message.id}: queued again")


@outbox_group.command("drain")
def outbox_drain() -> None:
    """Drain the outbox now, in this process (the job does it every 30 seconds)."""
    deps = container()
    result = outbox.drain(uow=deps.uow(), handlers=deps.outbox_handlers, policy=deps.drain_policy())
    click.echo(" ".join(f"{key}={value}" for key, value in result.items()))
