"""Re-running a use case that lost a race to a concurrent transaction.

A unique key taken a moment earlier (the same order, a new member's phone) or an InnoDB
deadlock / lock-wait timeout is not an error of the request: the retry, in a fresh
transaction, finds the winner's row and answers as the winner did.

A connection the database dropped before the use case committed (a restart, a killed
thread) is retried the same way, on a fresh connection: nothing of the attempt was kept.
One dropped at COMMIT is not (``CommitOutcomeUnknown``): the server may have committed,
and the request answers 503 for its client to retry under its idempotency key.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random

T = TypeVar("T")
ATTEMPTS = 4
# MySQL: deadlock found, lock wait timeout. SQLite: database is locked.
LOCK_WAIT_TIMEOUT = 1205
_RETRYABLE_MYSQL_CODES = {1213, LOCK_WAIT_TIMEOUT}


class RaceLost(Exception):
    """A domain's own sign that a concurrent transaction changed what this one relied on."""


class CommitOutcomeUnknown(Exception):
    """The connection was lost while COMMIT was on its way: the effect may or may not be
    durable, so the use case is not run again (an outage, 503, for the client to retry)."""


def dropped_connection(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def lost_a_race(error: BaseException) -> bool:
    if isinstance(error, RaceLost):
        return True
    if isinstance(error, IntegrityError):
        return True
    if dropped_connection(error):
        return True
    if isinstance(error, OperationalError):
        code = error.orig.args[0] if error.orig is not None and error.orig.args else None
        return code in _RETRYABLE_MYSQL_CODES or "database is locked" in str(error.orig)
    return False


def lock_wait_timed_out(error: BaseException) -> bool:
    """MySQL's 1205: a row lock was not granted within innodb_lock_wait_timeout."""
    if not isinstance(error, OperationalError) or error.orig is None or not error.orig.args:
        return False
    return bool(error.orig.args[0] == LOCK_WAIT_TIMEOUT)


def still_contended(error: BaseException) -> bool:
    """A race lost on every attempt (deadlocks, lock waits, a domain's RaceLost): the rows
    are busy, not broken, and the same request may succeed in a moment. A unique key that
    keeps failing is not contention but a defect, and stays one."""
    return lost_a_race(error) and not isinstance(error, IntegrityError)


def run_retrying_races(
    attempt: Callable[[], T], *, before_retry: Callable[[], object] | None = None
) -> T:
    """Run ``attempt`` (a whole use case with its own transaction) until it does not lose a
    race, a few times at most, with a little jitter so that racers spread out; the first
    run is a plain call, the retry machinery is set up only once a race is lost.
    ``before_retry`` runs before each new attempt."""
    try:
        return attempt()
    except Exception as error:
        if not lost_a_race(error):
            raise

    def again() -> T:
        if before_retry is not None:
            before_retry()
        return attempt()

    runner = retry(
        retry=retry_if_exception(lost_a_race),
        stop=stop_after_attempt(ATTEMPTS - 1),
        wait=wait_random(0, 0.02),
        reraise=True,
    )
    time.sleep(random.uniform(0, 0.02))
    return runner(again)()
