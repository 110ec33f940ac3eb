"""Claim an Idempotency-Key before running a request; store its answer after.

The claim is its own committed insert on a unique (scope, key): of concurrent
duplicates exactly one wins and runs; the others wait for its answer and replay it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from app import clock
from app.errors import IdempotencyMismatch, RequestInProgress
from app.idempotency.models import DONE, IdempotencyRecord
from app.uow import UnitOfWork

RETENTION = timedelta(hours=24)
WAIT_FOR_TWIN_SECONDS = 10.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Claimed:
    record_id: int


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


def claim_key(*, uow: UnitOfWork, scope: str, key: str, request_hash: str) -> Claimed | Replay:
    """Claim the key, or answer the stored response of the request that claimed it."""
    earlier = _await_twin(uow, scope, key, request_hash, missing_ok=True)
    if earlier is not None:  # a retry: one read, no failed insert
        return earlier
    try:
        with uow:
            record = IdempotencyRecord(
                scope=scope,
                key=key,
                request_hash=request_hash,
                expires_at=clock.now() + RETENTION,
            )
            uow.session.add(record)
            uow.commit()
            return Claimed(record.id)
    except IntegrityError:
        twin = _await_twin(uow, scope, key, request_hash)
        if twin is None:  # unreachable: without missing_ok a vanished twin raises
            raise RequestInProgress() from None
        return twin


def _await_twin(
    uow: UnitOfWork, scope: str, key: str, request_hash: str, *, missing_ok: bool = False
) -> Replay | None:
    """The twin's stored answer, waiting while it still runs; None if there is no twin
    and ``missing_ok``."""
    deadline = time.monotonic() + WAIT_FOR_TWIN_SECONDS
    while True:
        with uow:
            record = uow.session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            ).one_or_none()
            if record is not None and record.request_hash != request_hash:
                raise IdempotencyMismatch()
            if record is not None and record.state == DONE:
                return Replay(record.status_code or 200, record.response_body or "")
        if record is None and missing_ok:
            return None
        if record is None:  # the twin failed and let go of the key: a retry may run
            raise RequestInProgress("The earlier request with this key failed; retry.")
        if time.monotonic() >= deadline:
            raise RequestInProgress()
        time.sleep(POLL_SECONDS)


def store_response(*, uow: UnitOfWork, claimed: Claimed, status_code: int, body: str) -> None:
    with uow:
        record = uow.session.get(IdempotencyRecord, claimed.record_id)
        if record is not None:
            record.state = DONE
            record.status_code = status_code
            record.response_body = body
            uow.commit()


def release_key(*, uow: UnitOfWork, claimed: Claimed) -> None:
    """The request failed unexpectedly: forget the key so a retry can run."""
    with uow:
        uow.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id == claimed.record_id)
        )
        uow.commit()


def purge_expired(*, uow: UnitOfWork, batch_size: int = 1000) -> int:
    """Delete expired records in batches, a transaction per batch."""
    removed = 0
    while True:
        with uow:
            ids = list(
                uow.session.scalars(
                    select(IdempotencyRecord.id)
                    .where(IdempotencyRecord.expires_at < clock.now())
                    .limit(batch_size)
                )
            )
            if not ids:
                return removed
            uow.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
            uow.commit()
            removed += len(ids)
