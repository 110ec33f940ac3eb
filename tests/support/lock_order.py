"""A watch on every row lock the code takes: each transaction must take them in the order
``app.locks`` declares. Installed for every test (tests/conftest.py), so a use case that
locks out of order fails its own tests, on SQLite too (the statement is inspected before
the dialect drops FOR UPDATE)."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from app.locks import LOCK_ORDER, LOCKED_ALONE


def locked_contexts(state: ORMExecuteState) -> list[str]:
    """The contexts whose rows a statement locks with FOR UPDATE (none for other statements)."""
    if not state.is_select or getattr(state.statement, "_for_update_arg", None) is None:
        return []
    contexts = {mapper.class_.__module__.split(".")[1] for mapper in state.all_mappers}
    # One statement locking several contexts takes them as it joins them; it must join them
    # in the declared order, which is the order checked here.
    return sorted(contexts, key=lambda name: (_rank(name), name))


def _rank(context: str) -> int:
    return LOCK_ORDER.index(context) if context in LOCK_ORDER else len(LOCK_ORDER)


def violation(taken: list[str], context: str) -> str | None:
    """Why locking ``context`` after ``taken`` (in one transaction) breaks the order. A
    context locked again (a step re-taking the account its use case holds) is not."""
    if context not in LOCK_ORDER and context not in LOCKED_ALONE:
        return f"{context} locks rows but has no place in app.locks"
    if context in taken:
        return None
    others = [earlier for earlier in taken if earlier != context]
    if context in LOCKED_ALONE or any(earlier in LOCKED_ALONE for earlier in others):
        return f"{context} locked with {others}: it is locked alone" if others else None
    later = [earlier for earlier in others if _rank(earlier) > _rank(context)]
    return f"{context} locked after {later}" if later else None


@contextmanager
def watching_lock_order() -> Iterator[list[str]]:
    """Yields the violations seen while the block runs (every Session of the process)."""
    seen: weakref.WeakKeyDictionary[Session, list[str]] = weakref.WeakKeyDictionary()
    violations: list[str] = []

    def on_execute(state: ORMExecuteState) -> None:
        taken = seen.setdefault(state.session, [])
        for context in locked_contexts(state):
            problem = violation(taken, context)
            if problem is not None:
                violations.append(problem)
            taken.append(context)

    def on_end(session: Session, *_: object) -> None:
        seen.pop(session, None)

    listeners = [
        ("do_orm_execute", on_execute),
        ("after_commit", on_end),
        ("after_rollback", on_end),
        ("after_soft_rollback", on_end),
    ]
    for name, listener in listeners:
        event.listen(Session, name, listener)
    try:
        yield violations
    finally:
        for name, listener in listeners:
            event.remove(Session, name, listener)
