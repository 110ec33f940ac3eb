"""Unit of work: one use case, one transaction, committed explicitly.

Leaving the ``with`` block without ``commit()`` rolls back. A use case that may lose a
race runs through ``run``, which opens the transaction, commits it and re-runs it whole
when it lost. Callbacks registered with
``after_commit`` run only once the transaction is durable (WeChat calls, Redis);
events given to ``emit`` are written with the transaction and drained later.

``one_transaction`` joins every unit of work opened inside it (in this thread or
greenlet) into one transaction that its owner commits: the web layer's Idempotency-Key
wrapper uses it so that a keyed request's claim, its effect and its stored answer commit
together. What the owner ``hold``s (the claim) is kept by a savepoint: a block that fails
or loses a race rolls back to it, and a lost race re-runs the block in place, so the
request's work outside the database (a WeChat call) is not repeated. Inside it a block's
``commit()`` only flushes; the owner commits and then the hooks run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

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
    it uses, what its owner holds, and the after-commit hooks its blocks registered."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.after_commit: list[Callable[[], Any]] = []
        self.committed = False
        self.kept = 0  # blocks committed into it so far
        self.lost_kept_work = False  # a rollback undid a block that had committed into it
        self.held: Any = None  # what ``hold`` wrote, as its ``write`` answered it
        self._write: Callable[[], Any] | None = None
        self._savepoint: Any = None
        self._lost = False  # the database rolled everything back, the held row too

    def hold(self, write: Callable[[], T]) -> T:
        """Write what must outlive the blocks' rollbacks (``write()``, in this transaction),
        then a savepoint after it; a rollback that takes it anyway (a deadlock, a dropped
        connection) writes it again before the next block (``ensure_held``)."""
        self._write = write
        self.held = write()
        self._savepoint = self.session.begin_nested()
        return cast(T, self.held)

    def ensure_held(self) -> None:
        """Write the held row again if a rollback took it (may raise what ``write`` does)."""
        if self._lost and self._write is not None:
            self._lost = False
            self.held = self._write()
            self._savepoint = self.session.begin_nested()

    def rollback(self) -> None:
        """Undo the blocks' work: back to the savepoint after the held row when there is
        one and the database still has it; the whole transaction otherwise."""
        if self.kept:
            self.lost_kept_work = True
        self.after_commit = []
        if self._savepoint is not None:
            try:
                self._savepoint.rollback()
                self._savepoint = self.session.begin_nested()
                return
            except DBAPIError:  # the server ended the transaction (deadlock, lost connection)
                log.info("savepoint gone with the transaction; the held row is written again")
        self.session.rollback()
        self._savepoint = None
        self._lost = self._write is not None

    def commit(self) -> None:
        """Commit; the hooks run once ``one_transaction`` has ended (a failed one is
        logged: the data is committed)."""
        self.ensure_held()
        self.session.commit()
        self.committed = True


_JOINT: ContextVar[Joint | None] = ContextVar("huiyuan_uow_joint", default=None)


@contextmanager
def one_transaction(session_factory: sessionmaker[Session]) -> Iterator[Joint]:
    """Join every unit of work opened inside into one transaction, committed only by
    ``Joint.commit``; left without it, everything rolls back. The hooks of a committed
    joint run after it has ended, outside it."""
    if _JOINT.get() is not None:
        raise RuntimeError("one_transaction is not re-entrant")
    joint = Joint(session_factory())
    token = _JOINT.set(joint)
    try:
        yield joint
    finally:
        _JOINT.reset(token)
        joint.session.close()
    if joint.committed:
        _run_hooks(joint.after_commit)


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

        joint = _JOINT.get()
        if joint is not None:  # the joint's owner commits; a lost race re-runs ``work`` here

            def in_joint() -> T:
                with self:
                    answer = work(self, *args, **kwargs)
                    self.commit()
                    return answer

            return run_retrying_races(in_joint, before_retry=joint.ensure_held)

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
