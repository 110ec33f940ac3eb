"""The answers behind the Idempotency-Key header: looked up before a keyed request runs,
kept in the same transaction as its effect.

A keyed request is one transaction (``app.uow.one_transaction``). It looks its key up first
(one read): a stored answer is replayed; the same key with another request is a
mismatch. Otherwise it claims the key, inserting its row (unique on scope and key) before
the effect, runs, and writes its answer on that row before the COMMIT. A twin's claim
waits on the uncommitted row, so twins run one after another, never side by side (an
effect outside the database, a WeChat call, happens once); once the first commits, the
twin's claim fails (``KeyTaken``) and it replays the first answer. A request that dies in
flight leaves nothing behind, its claim included, so its retry simply runs.

Records claimed by the earlier protocol (a committed ``pending`` claim holding a lease,
then the answer) may still be met: a live lease is 409 ``conflict`` (still running), a
lapsed one is taken over by the claim. Answers are kept for ``RETENTION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app import clock
from app.errors import IdempotencyMismatch, RequestInProgress
from app.idempotency.models import IdempotencyRecord, RecordState
from app.retry import lock_wait_timed_out
from app.uow import UnitOfWork
from app.writes import insert_now, update_now

RETENTION = timedelta(hours=24)

_OF_KEY = (IdempotencyRecord.scope == bindparam("of_scope")) & (
    IdempotencyRecord.key == bindparam("of_key")
)
_FIND = select(
    IdempotencyRecord.request_hash,
    IdempotencyRecord.state,
    IdempotencyRecord.status_code,
    IdempotencyRecord.response_body,
    IdempotencyRecord.expires_at,
).where(_OF_KEY)


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


class KeyTaken(Exception):
    """A concurrent request with the same key committed first: roll back, then
    ``find_answer`` again."""


def find_answer(session: Session, *, scope: str, key: str, request_hash: str) -> Replay | None:
    """The stored answer to replay, or None when the request should run. Raises
    IdempotencyMismatch for the same key with another request, RequestInProgress while
    an earlier protocol's claim on the key is still live."""
    row = session.execute(_FIND, {"of_scope": scope, "of_key": key}).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise IdempotencyMismatch()
    if row.state == RecordState.DONE:
        return Replay(row.status_code or 200, row.response_body or "")
    if row.expires_at > clock.now():
        raise RequestInProgress()
    return None  # a lapsed claim: the request runs and keeps its answer over it


def lookup(*, uow: UnitOfWork, scope: str, key: str, request_hash: str) -> Replay | None:
    """``find_answer`` in a transaction of its own (before the request's)."""
    with uow:
        return find_answer(uow.session, scope=scope, key=key, request_hash=request_hash)


def claim(
    session: Session,
    *,
    scope: str,
    key: str,
    request_hash: str,
) -> IdempotencyRecord:
    """Insert the key's record in the request's transaction, before its effect: a twin's
    INSERT waits on it until this transaction ends; ``answer`` keeps the answer on it
    before the COMMIT. Raises KeyTaken when a twin committed the key first. A lapsed claim
    of the earlier protocol is taken over."""
    now = clock.now()
    values: dict[str, Any] = {"state": RecordState.PENDING, "expires_at": now + RETENTION}
    try:
        return insert_now(
            session, IdempotencyRecord(scope=scope, key=key, request_hash=request_hash, **values)
        )
    except IntegrityError:
        pass  # only this statement failed: the transaction goes on
    except OperationalError as error:
        if lock_wait_timed_out(error):  # the twin holding the key runs longer than we wait
            raise RequestInProgress() from None
        raise
    params = {"of_scope": scope, "of_key": key}
    taken_over = session.execute(
        update(IdempotencyRecord)
        .where(
            _OF_KEY,
            IdempotencyRecord.request_hash == request_hash,
            IdempotencyRecord.state == RecordState.PENDING,
            IdempotencyRecord.expires_at <= now,
        )
        .values(**values)
        .execution_options(synchronize_session=False),
        params,
    )
    if taken_over.rowcount != 1:  # type: ignore[attr-defined]
        raise KeyTaken
    return session.scalars(select(IdempotencyRecord).where(_OF_KEY), params).one()


def answer(session: Session, record: IdempotencyRecord, *, status_code: int, body: str) -> None:
    """Keep the answer on the record ``claim`` inserted in this transaction."""
    update_now(session, record, state=RecordState.DONE, status_code=status_code, response_body=body)


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
