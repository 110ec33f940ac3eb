"""`flask outbox list|retry|drain`: dead letters can be seen and put back."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from app import clock
from app.outbox.events import Event
from app.outbox.models import OutboxMessage


def test_a_dead_letter_is_listed_retried_and_drained(
    app: Flask, deps: Any, session: Session
) -> None:
    uow = deps.uow()
    with uow:
        uow.emit(Event("test.cli", {"n": 1}))
        uow.commit()
    message = session.query(OutboxMessage).filter_by(topic="test.cli").one()
    message.dead_at, message.attempts, message.last_error = clock.now(), 8, "boom"
    session.commit()
    runner = app.test_cli_runner()

    listed = runner.invoke(args=["outbox", "list", "--dead"])
    retried = runner.invoke(args=["outbox", "retry", str(message.id)])
    again = runner.invoke(args=["outbox", "retry", str(message.id)])
    drained = runner.invoke(args=["outbox", "drain"])

    assert listed.exit_code == 0
    assert f"{message.id}" in listed.output and "test.cli" in listed.output
    assert "dead boom" in listed.output
    assert retried.exit_code == 0, retried.output
    assert again.exit_code == 1 and "conflict" in again.output
    assert drained.exit_code == 0 and "handled=1" in drained.output
    session.expire_all()
    assert session.get(OutboxMessage, message.id).handled_at is not None  # type: ignore[union-attr]
