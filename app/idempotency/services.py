"""Claim an Idempotency-Key before running a request; store its answer after.

The claim is its own committed insert on a unique (scope, key): of concurrent
duplicates exactly one wins and runs; the others wait for its answer and replay it.

A pending claim is a lease: its ``expires_at`` is the end of the lease, not of the
retention. A request that died in flight (a killed worker, a lost database) leaves its
key pending; once the lease has run out, a retry of the same request takes the key over
and runs. An answered key is kept for ``RETENTION``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app import clock
from app.errors import IdempotencyMismatch, RequestInProgress
from app.idempotency.models import IdempotencyRecord, RecordState
from app.uow import UnitOfWork

RETENTION = timedelta(hours=24)
LEASE = timedelta(seconds=60)
WAIT_FOR_TWIN_SECONDS = 10.0
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Claimed:
    record_id: int
    lease_until: datetime  # identifies this claim: a take-over sets another


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


def claim_key(
    *,
    uow: UnitOfWork,
    scope: str,
    key: str,
    request_hash: str,
    lease: timedelta = LEASE,
    wait_seconds: float = WAIT_FOR_TWIN_SECONDS,
) -> Claimed | Replay:
    """Claim the key, or answer the stored response of the request that claimed it."""
    earlier = _await_twin(
        uow, scope, key, request_hash, lease=lease, wait_seconds=wait_seconds, missing_ok=True
    )
    if earlier is not None:  # a retry: one read, no failed insert
        return earlier
    try:
        with uow:
            lease_until = clock.now() + lease
            record = IdempotencyRecord(
                scope=scope, key=key, request_hash=request_hash, expires_at=lease_until
            )
            uow.session.add(record)
            uow.commit()
            return Claimed(record.id, lease_until)
    except IntegrityError:
        twin = _await_twin(uow, scope, key, request_hash, lease=lease, wait_seconds=wait_seconds)
        if twin is None:  # unreachable: without missing_ok a vanished twin raises
            raise RequestInProgress() from None
        return twin


def _await_twin(
    uow: UnitOfWork,
    scope: str,
    key: str,
    request_hash: str,
    *,
    lease: timedelta,
    wait_seconds: float,
    missing_ok: bool = False,
) -> Replay | Claimed | None:
    """The twin's stored answer, waiting while it still runs and holds its lease; the key
    itself once the twin's lease has run out; None if there is no twin and ``missing_ok``."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with uow:
            record = uow.session.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            ).one_or_none()
            if record is not None and record.request_hash != request_hash:
                raise IdempotencyMismatch()
            if record is not None and record.state == RecordState.DONE:
                return Replay(record.status_code or 200, record.response_body or "")
            if record is not None and record.expires_at <= clock.now():
                taken = _take_over(uow, record, lease)
                if taken is not None:
                    return taken
        if record is None and missing_ok:
            return None
        if record is None:  # the twin failed and let go of the key: a retry may run
            raise RequestInProgress("The earlier request with this key failed; retry.")
        if time.monotonic() >= deadline:
            raise RequestInProgress()
        time.sleep(POLL_SECONDS)


def _take_over(uow: UnitOfWork, record: IdempotencyRecord, lease: timedelta) -> Claimed | None:
    """Renew a lapsed lease for this request; of concurrent retries exactly one wins."""
    lease_until = clock.now() + lease
    renewed = uow.session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record.id,
            IdempotencyRecord.state == RecordState.PENDING,
            IdempotencyRecord.expires_at == record.expires_at,
        )
        .values(expires_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    uow.commit()
    return Claimed(record.id, lease_until) if renewed.rowcount == 1 else None  # type: ignore[attr-defined]


def _own_claim(claimed: Claimed) -> Any:
    """The record, as long as no retry took it over."""
    return (
        IdempotencyRecord.id == claimed.record_id,
        IdempotencyRecord.state == RecordState.PENDING,
        IdempotencyRecord.expires_at == claimed.lease_until,
    )


def store_response(*, uow: UnitOfWork, claimed: Claimed, status_code: int, body: str) -> None:
    with uow:
        uow.session.execute(
            update(IdempotencyRecord)
            .where(*_own_claim(claimed))
            .values(
                state=RecordState.DONE,
                status_code=status_code,
                response_body=body,
                expires_at=clock.now() + RETENTION,
            )
            .execution_options(synchronize_session=False)
        )
        uow.commit()


def release_key(*, uow: UnitOfWork, claimed: Claimed) -> None:
    """The request failed unexpectedly: forget the key so a retry can run."""
    with uow:
        uow.session.execute(delete(IdempotencyRecord).where(*_own_claim(claimed)))
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
