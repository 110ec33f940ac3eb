"""Unit of work: one use case, one transaction, committed explicitly.

Leaving the ``with`` block without ``commit()`` rolls back. A use case that may lose a
race runs through ``run``, which opens the transaction, commits it and re-runs it whole
when it lost. Callbacks registered with
``after_commit`` run only once the transaction is durable (WeChat calls, Redis);
events given to ``emit`` are written with the transaction and drained later.

``one_transaction`` joins every unit of work opened inside it (in this thread or
greenlet) into one transaction that its owner commits: the web layer's Idempotency-Key
wrapper uses it so that a keyed request's effect and its stored answer commit together.
Inside it ``commit()`` only flushes (the owner commits, then runs the hooks), ``run``
does not retry (the owner re-runs the whole request), and a block that fails rolls the
whole transaction back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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


class Joint:
    """The one transaction of ``one_transaction``: the session every unit of work inside
    it uses, and the after-commit hooks its blocks registered."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.after_commit: list[Callable[[], Any]] = []
        self.kept = 0  # blocks committed into it so far
        self.lost_kept_work = False  # a rollback undid a block that had committed into it
        self.rollbacks = 0  # so its owner knows whether what it wrote first is still there

    def rollback(self) -> None:
        if self.kept:
            self.lost_kept_work = True
        self.rollbacks += 1
        self.session.rollback()
        self.after_commit = []

    def commit(self) -> None:
        """Commit, then run the hooks (a failed one is logged: the data is committed)."""
        self.session.commit()
        _run_hooks(self.after_commit)
        self.after_commit = []


_JOINT: ContextVar[Joint | None] = ContextVar("huiyuan_uow_joint", default=None)


@contextmanager
def one_transaction(session_factory: sessionmaker[Session]) -> Iterator[Joint]:
    """Join every unit of work opened inside into one transaction, committed only by
    ``Joint.commit``; left without it, everything rolls back."""
    if _JOINT.get() is not None:
        raise RuntimeError("one_transaction is not re-entrant")
    joint = Joint(session_factory())
    token = _JOINT.set(joint)
    try:
        yield joint
    finally:
        _JOINT.reset(token)
        joint.session.close()


def run_as_one(session_factory: sessionmaker[Session], work: Callable[[Joint], T]) -> T:
    """Call ``work`` inside ``one_transaction`` (it commits with ``Joint.commit``); when
    it loses a race (``app.retry``) it is run again whole, in a fresh transaction."""

    def attempt() -> T:
        with one_transaction(session_factory) as joint:
            return work(joint)

    return run_retrying_races(attempt)


def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:  # the data is committed; a failed side effect must not undo the answer
            log.exception("after_commit hook failed")


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None
        self._after_commit: list[Callable[[], Any]] = []
        self._joint: Joint | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        if self._session is not None:
            raise RuntimeError("UnitOfWork is not re-entrant")
        self._joint = _JOINT.get()
        self._session = self._session_factory() if self._joint is None else self._joint.session
        self._after_commit = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        joint, self._joint = self._joint, None
        if session is None:
            return
        if joint is not None:
            if exc_type is not None:
                joint.rollback()
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

        if _JOINT.get() is not None:  # the joint's owner commits and re-runs on a lost race
            with self:
                answer = work(self, *args, **kwargs)
                self.commit()
                return answer

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
        hooks, self._after_commit = self._after_commit, []
        if self._joint is not None:
            self.session.flush()
            self._joint.after_commit.extend(hooks)
            self._joint.kept += 1
            return
        self.session.commit()
        _run_hooks(hooks)

    def rollback(self) -> None:
        self._after_commit = []
        if self._joint is not None:
            self._joint.rollback()
            return
        self.session.rollback()

    def after_commit(self, hook: Callable[[], Any]) -> None:
        self._after_commit.append(hook)

    def emit(self, event: Event) -> None:
        """Record a domain event in this transaction's outbox: it exists iff the change
        it announces commits, and the outbox drain hands it to its handlers."""
        outbox.emit(self.session, event)

    def flush(self) -> None:
        self.session.flush()
