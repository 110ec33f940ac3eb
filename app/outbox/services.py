"""The drain: lease a batch, run each subscribed handler once, settle the message.

At least once: a message is leased (``FOR UPDATE SKIP LOCKED``, so concurrent drains
take different rows) and every lease counts as an attempt. Each handler runs in its own
transaction that also inserts the (message, handler) delivery row, so a handler whose
transaction committed never runs again for that message, whoever drains it next. A
worker killed mid-batch leaves its leases to expire; the next drain takes them over.
A handler whose effect leaves the database (a WeChat send) can repeat if the worker dies
between the send and the commit: such handlers pass the message id as their dedupe id.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import clock
from app.errors import Conflict, NotFound
from app.outbox import locks, rules
from app.outbox.models import OutboxDelivery, OutboxMessage
from app.outbox.ports import Handler
from app.outbox.rules import DrainPolicy

if TYPE_CHECKING:  # the unit of work records events in the outbox: a runtime import cycles
    from app.uow import UnitOfWork

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def drain(
    *,
    uow: UnitOfWork,
    handlers: Iterable[Handler],
    policy: DrainPolicy,
    owner: str | None = None,
) -> dict[str, int]:
    """Hand pending messages to their handlers, batch by batch, until none is due or
    ``policy.max_batches`` ran. Answers how many were handled, retried, dead-lettered."""
    owner = owner or worker_name()
    subscribed = tuple(handlers)
    totals: Counter[str] = Counter()
    for _ in range(policy.max_batches):
        leased = lease_batch(uow=uow, policy=policy, owner=owner)
        if not leased:
            break
        for message_id in leased:
            totals[_deliver(uow, message_id, subscribed, policy, owner)] += 1
    return {key: totals[key] for key in ("handled", "retried", "dead", "lost_lease")}


def lease_batch(*, uow: UnitOfWork, policy: DrainPolicy, owner: str) -> list[int]:
    """Take up to a batch of due messages for ``lease_seconds``; rows another drain is
    leasing right now are skipped, not waited for (SQLite has no row locks: plain read)."""
    now = clock.now()
    with uow:
        rows = locks.lock_due_messages(uow.session, now=now, limit=policy.batch_size)
        for row in rows:
            row.leased_until = now + timedelta(seconds=policy.lease_seconds)
            row.lease_owner = owner
            row.attempts += 1
        uow.commit()
        return [row.id for row in rows]


def _deliver(
    uow: UnitOfWork, message_id: int, handlers: tuple[Handler, ...], policy: DrainPolicy, owner: str
) -> str:
    with uow:
        message = uow.session.get(OutboxMessage, message_id)
        if message is None:
            return "lost_lease"
        topic = message.topic
        done = _delivered(uow.session, message_id)
    errors = []
    for handler in handlers:
        if topic not in handler.topics or handler.name in done:
            continue
        try:
            _run_handler(uow, message_id, handler)
        except Exception as error:  # the handler's transaction rolled back; settle retries it
            log.exception("outbox handler failed", extra={"handler": handler.name})
            errors.append(f"{handler.name}: {type(error).__name__}: {error}")
    return _settle(uow, message_id, errors, policy, owner)


def _delivered(session: Session, message_id: int) -> set[str]:
    return set(
        session.scalars(
            select(OutboxDelivery.handler).where(OutboxDelivery.message_id == message_id)
        )
    )


def _run_handler(uow: UnitOfWork, message_id: int, handler: Handler) -> None:
    with uow:
        message = uow.session.get(OutboxMessage, message_id)
        if message is None:
            return
        delivery = OutboxDelivery(message_id=message_id, handler=handler.name)
        try:
            # Taken first: a second worker on the same message waits here, then finds it.
            with uow.session.begin_nested():
                uow.session.add(delivery)
        except IntegrityError:
            return
        delivery.outcome = (handler.run(uow.session, message) or "done")[:255]
        uow.commit()


def _settle(
    uow: UnitOfWork, message_id: int, errors: list[str], policy: DrainPolicy, owner: str
) -> str:
    now = clock.now()
    with uow:
        message = locks.lock_message(uow.session, message_id)
        if message.handled_at is not None or message.dead_at is not None:
            return "lost_lease"
        if message.lease_owner != owner:
            return "lost_lease"  # the lease expired and another drain owns the message now
        if not errors:
            message.mark_handled(now)
            uow.commit()
            return "handled"
        dead = rules.is_exhausted(message.attempts, policy)
        delay = timedelta(seconds=rules.backoff_seconds(message.attempts, policy))
        message.release(now=now, error="; ".join(errors), retry_at=now + delay, dead=dead)
        uow.commit()
    if dead:
        log.error("outbox message dead-lettered", extra={"message_id": message_id})
    return "dead" if dead else "retried"


def list_messages(
    *, uow: UnitOfWork, dead: bool = False, pending: bool = False, limit: int = 50
) -> list[OutboxMessage]:
    """Newest first; ``dead`` only dead letters, ``pending`` only those not yet handled."""
    with uow:
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if dead:
            query = query.where(OutboxMessage.dead_at.is_not(None))
        if pending:
            query = query.where(OutboxMessage.handled_at.is_(None), OutboxMessage.dead_at.is_(None))
        return list(uow.session.scalars(query))


def retry_message(*, uow: UnitOfWork, message_id: int) -> OutboxMessage:
    """Put a dead letter back in the queue, due now, with its attempts counted afresh.
    Handlers that had delivered it are not run again."""
    with uow:
        message = uow.session.get(OutboxMessage, message_id)
        if message is None:
            raise NotFound("No such outbox message.")
        if message.dead_at is None:
            raise Conflict("Only a dead-lettered message can be retried.")
        message.dead_at, message.attempts = None, 0
        message.available_at = clock.now()
        uow.commit()
        return message
