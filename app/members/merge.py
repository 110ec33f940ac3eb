"""The merge-step protocol: how a context that owns member data takes part in a merge.

A merge moves the loser's identities itself (``operations.merge_members``), then runs every
registered step in registration order, inside the merge transaction and after both member
rows are locked. The contexts above ``members`` own the steps; the composition root
(``app.wiring``, run by ``create_app``) registers them, so ``members`` imports none of them.
Each step answers what it moved (``{"orders": 3}``), which the merge log records, and names
the tables it moves, which ``tests/integration/test_merge_steps.py`` checks against every
table with a ``member_id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session


class MergeStep(Protocol):
    def __call__(self, session: Session, loser_id: int, survivor_id: int) -> Mapping[str, Any]:
        """Move the loser's rows to the survivor (flush, never commit); answer what moved."""
        ...


@dataclass(frozen=True)
class RegisteredStep:
    context: str
    tables: frozenset[str]
    run: MergeStep


class NoMergeSteps(RuntimeError):
    """A merge was asked for before the composition root registered the steps."""


class MergeRegistry:
    """The steps in the order they run; registering a context again replaces its step in
    place, so building the app twice changes nothing."""

    def __init__(self) -> None:
        self._steps: dict[str, RegisteredStep] = {}

    def register(self, context: str, step: MergeStep, *, tables: Iterable[str]) -> None:
        self._steps[context] = RegisteredStep(context, frozenset(tables), step)

    def steps(self) -> tuple[RegisteredStep, ...]:
        if not self._steps:
            raise NoMergeSteps("no merge steps registered: app.wiring.wire_domain() does that")
        return tuple(self._steps.values())

    def tables(self) -> frozenset[str]:
        return frozenset(table for step in self._steps.values() for table in step.tables)


MERGE_STEPS = MergeRegistry()
