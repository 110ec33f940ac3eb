"""Unit of work: one use case, one transaction, committed explicitly.

Leaving the ``with`` block without ``commit()`` rolls back. A use case that may lose a
race runs through ``run``, which opens the transaction, commits it and re-runs it whole
when it lost. Callbacks registered with
``after_commit`` run only once the transaction is durable (WeChat calls, Redis);
events given to ``emit`` are written with the transaction and drained later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.outbox import operations as outbox
from app.outbox.events import Event
from app.retry import CommitOutcomeUnknown, dropped_connection, run_retrying_races

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None
        self._after_commit: list[Callable[[], Any]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        if self._session is not None:
            raise RuntimeError("UnitOfWork is not re-entrant")
        self._session = self._session_factory()
        self._after_commit = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        # close() rolls back whatever was not committed and detaches the objects without
        # expiring them, so a use case can return the rows it read.
        session.close()

    def run(
        self, work: Callable[Concatenate[UnitOfWork, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A use case's transaction: open it, call ``work(self, *args, **kwargs)``, commit,
        answer what ``work`` answered. When it loses a race (``app.retry.lost_a_race``: a
        unique key taken meanwhile, a deadlock, a lock wait timeout, a ``RaceLost``, a
        connection dropped before COMMIT) it is rolled back and run again whole, in a
        fresh transaction, a few times at most; the retry meets the winner's rows.
        ``work`` never commits; to answer without keeping what it wrote, it calls
        ``rollback()``."""

        def attempt() -> T:
            with self:
                answer = work(self, *args, **kwargs)
                try:
                    self.commit()
                except DBAPIError as error:
                    if dropped_connection(error):
                        raise CommitOutcomeUnknown(str(error)) from error
                    raise
                return answer

        return run_retrying_races(attempt)

    def commit(self) -> None:
        self.session.commit()
        hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            try:
                hook()
            except (
                Exception
            ):  # the data is committed; a failed side effect must not undo the answer
                log.exception("after_commit hook failed")

    def rollback(self) -> None:
        self.session.rollback()
        self._after_commit = []

    def after_commit(self, hook: Callable[[], Any]) -> None:
        self._after_commit.append(hook)

    def emit(self, event: Event) -> None:
        """Record a domain event in this transaction's outbox: it exists iff the change
        it announces commits, and the outbox drain hands it to its handlers."""
        outbox.emit(self.session, event)

    def flush(self) -> None:
        self.session.flush()
