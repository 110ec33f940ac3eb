"""Idempotency-Key records at the service level: look up, keep with the effect, replay,
take over an earlier protocol's lapsed claim, purge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.errors import IdempotencyMismatch, InsufficientPoints, RequestInProgress
from app.idempotency import services as idem
from app.idempotency.models import IdempotencyRecord, RecordState
from app.outbox.events import Event, Topic
from app.outbox.models import OutboxMessage
from app.retry import RaceLost
from app.uow import Joint, UnitOfWork, one_transaction
from tests.support.rows import NewRows

SCOPE = "mp:42"
HASH_A = "a" * 64
HASH_B = "b" * 64
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _lookup(uow: UnitOfWork, key: str, request_hash: str = HASH_A, scope: str = SCOPE) -> Any:
    return idem.lookup(uow=uow, scope=scope, key=key, request_hash=request_hash)


def _keep(
    uow: UnitOfWork,
    key: str,
    *,
    status: int = 200,
    body: str = "{}",
    request_hash: str = HASH_A,
    scope: str = SCOPE,
) -> None:
    with uow:
        record = idem.claim(uow.session, scope=scope, key=key, request_hash=request_hash)
        idem.answer(uow.session, record, status_code=status, body=body)
        uow.commit()


def _hold_claim(joint: Joint, key: str, scope: str = SCOPE) -> IdempotencyRecord:
    """As the Idempotency-Key wrapper claims a key: held through the blocks' rollbacks."""
    return joint.hold(lambda: idem.claim(joint.session, scope=scope, key=key, request_hash=HASH_A))


def _record(session: Session, key: str, scope: str = SCOPE) -> IdempotencyRecord | None:
    session.expire_all()
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    ).one_or_none()


def _legacy_claim(session: Session, key: str, lease_until: datetime) -> None:
    """A pending claim as the earlier protocol committed it before running its request."""
    session.add(
        IdempotencyRecord(
            scope=SCOPE,
            key=key,
            request_hash=HASH_A,
            state=RecordState.PENDING,
            expires_at=lease_until,
        )
    )
    session.commit()


def test_an_unknown_key_runs(uow: UnitOfWork, rows: NewRows) -> None:
    assert _lookup(uow, "k-1") is None
    assert rows.added(IdempotencyRecord) == 0


def test_a_kept_answer_is_replayed(uow: UnitOfWork, session: Session, rows: NewRows) -> None:
    body = '{"id": 7, "points_spent": 100, "note": "积分"}'
    with time_machine.travel(T0, tick=False):
        _keep(uow, "k-1", status=201, body=body)

    assert _lookup(uow, "k-1") == idem.Replay(status_code=201, body=body)
    assert _lookup(uow, "k-1") == idem.Replay(status_code=201, body=body)
    record = _record(session, "k-1")
    assert record is not None
    assert (record.state, record.expires_at) == (RecordState.DONE, T0 + idem.RETENTION)
    assert rows.added(IdempotencyRecord) == 1


def test_a_kept_error_answer_is_replayed_too(uow: UnitOfWork) -> None:
    body = '{"error": {"code": "insufficient_points"}}'
    _keep(uow, "k-1", status=409, body=body)

    assert _lookup(uow, "k-1") == idem.Replay(409, body)


def test_the_same_key_with_another_request_is_a_mismatch(uow: UnitOfWork) -> None:
    _keep(uow, "k-1", request_hash=HASH_A)

    with pytest.raises(IdempotencyMismatch) as caught:
        _lookup(uow, "k-1", HASH_B)

    assert caught.value.code == "idempotency_mismatch"
    assert caught.value.status == 409


def test_keys_are_per_scope_and_case_sensitive(uow: UnitOfWork, rows: NewRows) -> None:
    _keep(uow, "k-1", scope="mp:42", body="1")
    _keep(uow, "k-1", scope="mp:43", body="2")
    _keep(uow, "K-1", scope="mp:42", body="3")

    assert [
        _lookup(uow, "k-1", scope="mp:42").body,
        _lookup(uow, "k-1", scope="mp:43").body,
        _lookup(uow, "K-1", scope="mp:42").body,
    ] == ["1", "2", "3"]
    assert rows.added(IdempotencyRecord) == 3


def test_a_second_claim_of_a_kept_key_is_refused(uow: UnitOfWork, session: Session) -> None:
    _keep(uow, "k-1", body='{"first": true}')

    with pytest.raises(idem.KeyTaken):
        _keep(uow, "k-1", body='{"second": true}')

    record = _record(session, "k-1")
    assert record is not None and record.response_body == '{"first": true}'


def test_an_answer_rolled_back_with_its_effect_leaves_the_key_free(
    uow: UnitOfWork, session_factory: sessionmaker[Session], rows: NewRows
) -> None:
    with one_transaction(session_factory) as joint:
        with uow:
            uow.emit(Event(Topic.ORDER_RECORDED, {"n": 1}))
            uow.commit()  # joined: only flushed
        record = idem.claim(joint.session, scope=SCOPE, key="k-1", request_hash=HASH_A)
        idem.answer(joint.session, record, status_code=201, body="{}")
    # left without joint.commit(): the effect and the answer are gone together

    assert _lookup(uow, "k-1") is None
    assert rows.added(IdempotencyRecord) == 0
    assert rows.added(OutboxMessage) == 0


def test_the_joint_commits_the_effect_with_its_answer_and_then_runs_the_hooks(
    uow: UnitOfWork, session_factory: sessionmaker[Session], rows: NewRows
) -> None:
    ran: list[str] = []
    with one_transaction(session_factory) as joint:
        with uow:
            uow.emit(Event(Topic.ORDER_RECORDED, {"n": 1}))
            uow.after_commit(lambda: ran.append("hook"))
            uow.commit()
        assert ran == []  # not committed yet
        record = idem.claim(joint.session, scope=SCOPE, key="k-1", request_hash=HASH_A)
        idem.answer(joint.session, record, status_code=201, body="{}")
        joint.commit()

    assert ran == ["hook"]
    assert _lookup(uow, "k-1") == idem.Replay(201, "{}")
    assert (rows.added(IdempotencyRecord), rows.added(OutboxMessage)) == (1, 1)


def test_a_failed_block_rolls_the_joint_back_and_says_when_kept_work_was_lost(
    uow: UnitOfWork, session_factory: sessionmaker[Session], rows: NewRows
) -> None:
    with one_transaction(session_factory) as joint:
        with pytest.raises(ValueError), uow:
            uow.emit(Event(Topic.ORDER_RECORDED, {"n": 1}))
            raise ValueError("the use case failed")
        assert not joint.lost_kept_work  # nothing had been kept into it
        with uow:
            uow.emit(Event(Topic.ORDER_RECORDED, {"n": 2}))
            uow.commit()
        with pytest.raises(ValueError), uow:
            raise ValueError("a second use case failed")
        assert joint.lost_kept_work  # the first block's kept work went with the rollback

    assert rows.added(OutboxMessage) == 0


def test_a_lost_race_reruns_the_block_in_place_and_keeps_the_claim(
    uow: UnitOfWork, session_factory: sessionmaker[Session], rows: NewRows
) -> None:
    """The request's work outside its blocks (a WeChat call) is not repeated."""
    outside, tries = [], []

    def work(uow: UnitOfWork) -> str:
        tries.append(1)
        uow.emit(Event(Topic.ORDER_RECORDED, {"try": len(tries)}))
        if len(tries) == 1:
            raise RaceLost("a concurrent transaction won")
        return "done"

    with one_transaction(session_factory) as joint:
        record = _hold_claim(joint, "k-1")
        outside.append("called WeChat")
        assert uow.run(work) == "done"
        assert joint.held is record
        idem.answer(joint.session, record, status_code=200, body="{}")
        joint.commit()

    assert (outside, len(tries)) == (["called WeChat"], 2)
    assert _lookup(uow, "k-1") == idem.Replay(200, "{}")
    assert (rows.added(IdempotencyRecord), rows.added(OutboxMessage)) == (1, 1)


def test_a_rollback_goes_back_to_just_after_the_claim(
    uow: UnitOfWork, session_factory: sessionmaker[Session], rows: NewRows
) -> None:
    with one_transaction(session_factory) as joint:
        record = _hold_claim(joint, "k-1")
        with pytest.raises(InsufficientPoints), uow:
            uow.emit(Event(Topic.ORDER_RECORDED, {"n": 1}))
            raise InsufficientPoints(balance=0, requested=1)
        joint.rollback()  # as the wrapper does for a domain error: twice is harmless
        joint.ensure_held()
        assert joint.held is record  # the claim (and its lock) outlived both rollbacks
        idem.answer(joint.session, record, status_code=409, body='{"error": 1}')
        joint.commit()

    assert _lookup(uow, "k-1") == idem.Replay(409, '{"error": 1}')
    assert (rows.added(IdempotencyRecord), rows.added(OutboxMessage)) == (1, 0)


def test_hooks_run_after_the_joint_has_ended(
    uow: UnitOfWork, session_factory: sessionmaker[Session], rows: NewRows
) -> None:
    """A hook that opens a unit of work gets a transaction of its own, not the ended joint."""

    def hook() -> None:
        with UnitOfWork(session_factory) as own:
            own.emit(Event(Topic.ORDER_RECORDED, {"by": "hook"}))
            own.commit()

    with one_transaction(session_factory) as joint:
        with uow:
            uow.after_commit(hook)
            uow.commit()
        joint.commit()
        assert rows.added(OutboxMessage) == 0  # not yet: the joint is still open

    assert rows.added(OutboxMessage) == 1


# an earlier protocol's claims (pending, with a lease) met after an upgrade


def test_a_live_legacy_claim_is_still_in_progress(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False):
        _legacy_claim(session, "k-live", T0 + timedelta(seconds=30))
        with pytest.raises(RequestInProgress):
            _lookup(uow, "k-live")


def test_a_lapsed_legacy_claim_is_taken_over_by_the_answer(
    uow: UnitOfWork, session: Session, rows: NewRows
) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        _legacy_claim(session, "k-dead", T0 + timedelta(seconds=60))
        traveller.shift(timedelta(seconds=60))
        assert _lookup(uow, "k-dead") is None  # its request died: the retry runs
        _keep(uow, "k-dead", status=201, body='{"id": 9}')
        replay = _lookup(uow, "k-dead")

    assert replay == idem.Replay(201, '{"id": 9}')
    record = _record(session, "k-dead")
    assert record is not None
    assert (record.state, record.expires_at) == (
        RecordState.DONE,
        T0 + timedelta(seconds=60) + idem.RETENTION,
    )
    assert rows.added(IdempotencyRecord) == 1


def test_a_lapsed_legacy_claim_is_no_licence_for_another_body(
    uow: UnitOfWork, session: Session
) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        _legacy_claim(session, "k-other", T0 + timedelta(seconds=60))
        traveller.shift(timedelta(minutes=10))
        with pytest.raises(IdempotencyMismatch):
            _lookup(uow, "k-other", HASH_B)
        with pytest.raises(idem.KeyTaken):
            _keep(uow, "k-other", request_hash=HASH_B)


# purging


def test_purge_deletes_only_expired_records(uow: UnitOfWork, session: Session) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        _keep(uow, "old")
        traveller.shift(timedelta(hours=1))
        _keep(uow, "recent")
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
            _keep(uow, f"k-{n}")
        traveller.shift(idem.RETENTION + timedelta(minutes=1))
        _keep(uow, "fresh")

        removed = idem.purge_expired(uow=uow, batch_size=2)

    assert removed == 5
    assert rows.added(IdempotencyRecord) == 1
    assert _record(session, "fresh") is not None


# concurrency, on MariaDB: every thread has its own committed transaction


@pytest.mark.mariadb
@pytest.mark.parametrize("same_body", [True, False], ids=["duplicates", "mismatches"])
def test_concurrent_twins_have_one_effect_and_all_get_the_first_answer(
    committing_factory: sessionmaker[Session],
    cleanup: Callable[[Any, Any], None],
    same_body: bool,
) -> None:
    """Twins all find no answer; the first to claim the key runs while the others' claims
    wait on its uncommitted row, then fail: they replay its answer (or, with another
    body, are told of the mismatch). One effect, one record."""
    scope, threads = f"mp:concurrency-{same_body}", 12
    cleanup(IdempotencyRecord, IdempotencyRecord.scope == scope)
    cleanup(OutboxMessage, OutboxMessage.topic == Topic.ORDER_RECORDED)
    start = threading.Barrier(threads)
    running: list[int] = []

    def request(n: int) -> Any:
        try:
            return attempt(n)
        except IdempotencyMismatch as mismatch:
            return mismatch.code

    def attempt(n: int) -> Any:
        uow = UnitOfWork(committing_factory)
        request_hash = HASH_A if same_body or n % 2 else HASH_B
        start.wait(timeout=10)
        try:
            earlier = idem.lookup(uow=uow, scope=scope, key="k", request_hash=request_hash)
            if earlier is not None:
                return earlier
            with one_transaction(committing_factory) as joint:
                record = idem.claim(joint.session, scope=scope, key="k", request_hash=request_hash)
                running.append(n)
                assert len(running) == 1, running  # twins wait on the claim: one at a time
                with uow:
                    uow.emit(Event(Topic.ORDER_RECORDED, {"scope": scope, "n": n}))
                    uow.commit()
                threading.Event().wait(0.05)  # the effect takes a moment
                body = f'{{"n": {n}}}'
                idem.answer(joint.session, record, status_code=201, body=body)
                running.remove(n)
                joint.commit()
                return idem.Replay(201, body)
        except idem.KeyTaken:
            return idem.lookup(uow=uow, scope=scope, key="k", request_hash=request_hash)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(request, range(threads)))

    with committing_factory() as session:
        effects = session.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.topic == Topic.ORDER_RECORDED)
        ).all()
        kept = session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.scope == scope)
        )
    ours = [payload for payload in effects if payload.get("scope") == scope]
    assert len(ours) == 1 and kept == 1
    first = idem.Replay(201, f'{{"n": {ours[0]["n"]}}}')
    replays = [outcome for outcome in outcomes if isinstance(outcome, idem.Replay)]
    mismatches = [outcome for outcome in outcomes if outcome == "idempotency_mismatch"]
    assert set(replays) == {first}
    if same_body:
        assert len(replays) == threads
    else:
        assert len(replays) + len(mismatches) == threads and mismatches


@pytest.mark.mariadb
def test_a_twin_waits_through_the_firsts_rollback_and_replays_its_error_answer(
    committing_factory: sessionmaker[Session], cleanup: Callable[[Any, Any], None]
) -> None:
    """The first request's domain error rolls back to just after its claim: the claim's lock
    holds, so its twin neither runs nor answers anything but the first's error."""
    scope = "mp:rollback-twin"
    cleanup(IdempotencyRecord, IdempotencyRecord.scope == scope)
    claimed, twin_ran = threading.Event(), []
    body = '{"error": {"code": "insufficient_points"}}'

    def first() -> None:
        with one_transaction(committing_factory) as joint:
            record = _hold_claim(joint, "k", scope)
            claimed.set()
            threading.Event().wait(0.3)  # the twin is waiting on the claim by now
            joint.rollback()  # the view's domain error
            idem.answer(joint.session, record, status_code=409, body=body)
            joint.commit()

    def twin() -> Any:
        claimed.wait(timeout=10)
        uow = UnitOfWork(committing_factory)
        assert idem.lookup(uow=uow, scope=scope, key="k", request_hash=HASH_A) is None
        try:
            with one_transaction(committing_factory) as joint:
                _hold_claim(joint, "k", scope)
                twin_ran.append(True)
        except idem.KeyTaken:
            return idem.lookup(uow=uow, scope=scope, key="k", request_hash=HASH_A)
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.submit(first)
        replay = pool.submit(twin).result(timeout=30)
        done.result(timeout=30)

    assert twin_ran == []
    assert replay == idem.Replay(409, body)
