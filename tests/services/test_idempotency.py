"""Idempotency-Key records at the service level: claim, store, replay, release, purge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.errors import IdempotencyMismatch, RequestInProgress
from app.idempotency import services as idem
from app.idempotency.models import IdempotencyRecord, RecordState
from app.uow import UnitOfWork
from tests.support.rows import NewRows

SCOPE = "mp:42"
HASH_A = "a" * 64
HASH_B = "b" * 64
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _claim(uow: UnitOfWork, key: str, request_hash: str = HASH_A, scope: str = SCOPE) -> Any:
    return idem.claim_key(uow=uow, scope=scope, key=key, request_hash=request_hash)


def _record(session: Session, key: str, scope: str = SCOPE) -> IdempotencyRecord | None:
    session.expire_all()
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    ).one_or_none()


def test_the_first_claim_wins_and_is_pending(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False):
        claimed = _claim(uow, "k-1")

    assert isinstance(claimed, idem.Claimed)
    record = _record(session, "k-1")
    assert record is not None
    assert record.id == claimed.record_id
    assert (record.state, record.request_hash, record.status_code) == (
        RecordState.PENDING,
        HASH_A,
        None,
    )
    assert record.expires_at == T0 + idem.LEASE  # a pending claim holds a lease


def test_a_retry_replays_the_stored_response(
    uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    claimed = _claim(uow, "k-1")
    body = '{"id": 7, "points_spent": 100, "note": "积分"}'
    idem.store_response(uow=uow, claimed=claimed, status_code=201, body=body)

    first_retry = _claim(uow, "k-1")
    second_retry = _claim(uow, "k-1")

    assert first_retry == idem.Replay(status_code=201, body=body)
    assert second_retry == first_retry
    record = _record(session, "k-1")
    assert record is not None and record.state == RecordState.DONE
    assert rows.added(IdempotencyRecord) == 1


def test_a_stored_error_answer_is_replayed_too(uow: UnitOfWork) -> None:
    claimed = _claim(uow, "k-1")
    body = '{"error": {"code": "insufficient_points"}}'
    idem.store_response(uow=uow, claimed=claimed, status_code=409, body=body)

    assert _claim(uow, "k-1") == idem.Replay(409, body)


@pytest.mark.parametrize("stored", [False, True])
def test_the_same_key_with_another_request_is_a_mismatch(uow: UnitOfWork, stored: bool) -> None:
    claimed = _claim(uow, "k-1", HASH_A)
    if stored:
        idem.store_response(uow=uow, claimed=claimed, status_code=200, body="{}")

    with pytest.raises(IdempotencyMismatch) as caught:
        _claim(uow, "k-1", HASH_B)

    assert caught.value.code == "idempotency_mismatch"
    assert caught.value.status == 409


def test_keys_are_per_scope_and_case_sensitive(
    uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    outcomes = [
        _claim(uow, "k-1", scope="mp:42"),
        _claim(uow, "k-1", scope="mp:43"),
        _claim(uow, "K-1", scope="mp:42"),
    ]

    assert all(isinstance(o, idem.Claimed) for o in outcomes)
    assert len({o.record_id for o in outcomes}) == 3
    assert rows.added(IdempotencyRecord) == 3


def test_a_released_key_can_be_claimed_again(uow: UnitOfWork, session: Session) -> None:
    first = _claim(uow, "k-1", HASH_A)
    idem.release_key(uow=uow, claimed=first)

    assert _record(session, "k-1") is None
    again = _claim(uow, "k-1", HASH_B)  # a retry may even differ: the first never happened
    assert isinstance(again, idem.Claimed)
    record = _record(session, "k-1")
    assert record is not None and record.request_hash == HASH_B


def test_storing_for_a_released_claim_does_nothing(
    uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    claimed = _claim(uow, "k-1")
    idem.release_key(uow=uow, claimed=claimed)

    idem.store_response(uow=uow, claimed=claimed, status_code=200, body="{}")

    assert rows.added(IdempotencyRecord) == 0


def test_purge_deletes_only_expired_records(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        idem.store_response(uow=uow, claimed=_claim(uow, "old"), status_code=200, body="{}")
        traveller.shift(timedelta(hours=1))
        idem.store_response(uow=uow, claimed=_claim(uow, "recent"), status_code=200, body="{}")
        traveller.move_to(T0 + idem.RETENTION)

        at_expiry = idem.purge_expired(uow=uow)  # "old" expires now: not yet past it
        traveller.shift(timedelta(seconds=1))
        after_expiry = idem.purge_expired(uow=uow)
        again = idem.purge_expired(uow=uow)

    assert (at_expiry, after_expiry, again) == (0, 1, 0)
    assert _record(session, "old") is None
    assert _record(session, "recent") is not None


def test_purge_works_through_several_batches(
    uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        for n in range(5):
            _claim(uow, f"k-{n}")
        traveller.shift(idem.RETENTION + timedelta(minutes=1))
        _claim(uow, "fresh")

        removed = idem.purge_expired(uow=uow, batch_size=2)

    assert removed == 5
    assert rows.added(IdempotencyRecord) == 1
    assert _record(session, "fresh") is not None


# concurrency, on MariaDB: every thread has its own committed transaction


@pytest.mark.mariadb
def test_concurrent_duplicates_run_once_and_all_get_the_first_answer(
    committing_factory: sessionmaker[Session], cleanup: Callable[[Any, Any], None]
) -> None:
    scope, key, threads = "mp:concurrency", "same-key", 20
    cleanup(IdempotencyRecord, IdempotencyRecord.scope == scope)
    start = threading.Barrier(threads)
    body = '{"id": 1, "points_spent": 500}'

    def request() -> Any:
        uow = UnitOfWork(committing_factory)
        start.wait(timeout=10)
        outcome = idem.claim_key(uow=uow, scope=scope, key=key, request_hash=HASH_A)
        if isinstance(outcome, idem.Claimed):
            # The winner "runs the request" a little while its twins wait on the pending key.
            threading.Event().wait(0.3)
            idem.store_response(uow=uow, claimed=outcome, status_code=201, body=body)
        return outcome

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(lambda _: request(), range(threads)))

    claimed = [o for o in outcomes if isinstance(o, idem.Claimed)]
    replays = [o for o in outcomes if isinstance(o, idem.Replay)]
    assert len(claimed) == 1
    assert replays == [idem.Replay(201, body)] * (threads - 1)
    with committing_factory() as session:
        records = session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.scope == scope)
        ).all()
    assert [(r.id, r.state) for r in records] == [(claimed[0].record_id, RecordState.DONE)]


# leases: a pending key whose request died in flight does not block its retries


def test_a_twin_of_a_live_lease_waits_and_gets_409(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        first = _claim(uow, "k-live")
        traveller.shift(idem.LEASE - timedelta(seconds=1))
        with pytest.raises(RequestInProgress):
            idem.claim_key(
                uow=uow, scope=SCOPE, key="k-live", request_hash=HASH_A, wait_seconds=0.2
            )

    record = _record(session, "k-live")
    assert record is not None
    assert (record.state, record.expires_at) == (RecordState.PENDING, first.lease_until)


def test_a_retry_takes_over_a_lapsed_lease(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        dead = _claim(uow, "k-dead")
        traveller.shift(idem.LEASE)
        retry = _claim(uow, "k-dead")
        # The first request was only slow: its late answer and its late release change
        # nothing, since the key is the retry's now.
        idem.store_response(uow=uow, claimed=dead, status_code=500, body='{"late": true}')
        idem.release_key(uow=uow, claimed=dead)
        record = _record(session, "k-dead")
        assert isinstance(retry, idem.Claimed)
        assert retry.record_id == dead.record_id
        assert retry.lease_until == T0 + 2 * idem.LEASE
        assert record is not None
        assert (record.state, record.expires_at) == (RecordState.PENDING, retry.lease_until)

        idem.store_response(uow=uow, claimed=retry, status_code=201, body='{"id": 9}')
        replay = _claim(uow, "k-dead")

    assert replay == idem.Replay(201, '{"id": 9}')
    record = _record(session, "k-dead")
    assert record is not None
    assert (record.state, record.expires_at) == (RecordState.DONE, T0 + idem.LEASE + idem.RETENTION)


def test_a_lapsed_lease_is_no_licence_for_another_body(uow: UnitOfWork) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        _claim(uow, "k-other")
        traveller.shift(idem.LEASE * 10)
        with pytest.raises(IdempotencyMismatch):
            _claim(uow, "k-other", HASH_B)


def test_purge_frees_keys_whose_lease_ran_out(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        _claim(uow, "k-pending")
        traveller.shift(idem.LEASE + timedelta(seconds=1))
        assert idem.purge_expired(uow=uow) == 1

    assert _record(session, "k-pending") is None


@pytest.mark.mariadb
def test_concurrent_retries_of_a_dead_request_take_over_once(
    committing_factory: sessionmaker[Session], cleanup: Callable[[Any, Any], None]
) -> None:
    scope, key, threads = "mp:lease-race", "dead-key", 12
    cleanup(IdempotencyRecord, IdempotencyRecord.scope == scope)
    lease = timedelta(seconds=1)
    dead = idem.claim_key(
        uow=UnitOfWork(committing_factory), scope=scope, key=key, request_hash=HASH_A, lease=lease
    )
    assert isinstance(dead, idem.Claimed)
    threading.Event().wait(1.1)  # the request that claimed the key died; its lease runs out
    start = threading.Barrier(threads)
    body = '{"id": 2}'

    def retry() -> Any:
        uow = UnitOfWork(committing_factory)
        start.wait(timeout=10)
        outcome = idem.claim_key(uow=uow, scope=scope, key=key, request_hash=HASH_A)
        if isinstance(outcome, idem.Claimed):
            threading.Event().wait(0.3)
            idem.store_response(uow=uow, claimed=outcome, status_code=201, body=body)
        return outcome

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(lambda _: retry(), range(threads)))

    claimed = [o for o in outcomes if isinstance(o, idem.Claimed)]
    assert len(claimed) == 1
    assert claimed[0].record_id == dead.record_id
    replays = [o for o in outcomes if not isinstance(o, idem.Claimed)]
    assert replays == [idem.Replay(201, body)] * (threads - 1)
