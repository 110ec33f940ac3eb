"""Counters on hot rows (stock, seats, quotas) changed by one conditional UPDATE.

``take`` decrements only while enough is left, in the statement itself::

    UPDATE t SET n = n - :k WHERE id = :id AND n >= :k

so concurrent takers never oversell and need no ``SELECT ... FOR UPDATE`` first: the row
is locked by the UPDATE, until the transaction ends. The statement's rowcount says
whether it took; none is the given domain error. ``give_back`` returns what a take took
(a cancelled redemption). Both leave any ORM object of the row stale: refresh it before
reading the counter in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Table, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import DomainError

# A mapped attribute (``Item.stock``) or a table's column (``items.c.stock``).
Counter = InstrumentedAttribute[int] | Column[int]


def take(
    session: Session,
    counter: Counter,
    row_id: int,
    k: int,
    *,
    error: Callable[[], DomainError],
) -> None:
    """Take ``k`` from ``counter`` (a column, e.g. ``Item.stock``) of row ``row_id``, or
    raise ``error()`` and change nothing when fewer than ``k`` are left (or no such row)."""
    column, table, key = _target(counter, k)
    result: Any = session.execute(
        update(table)
        .where(key == row_id, column >= k)
        .values({column.name: column - k})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise error()


def give_back(session: Session, counter: Counter, row_id: int, k: int) -> None:
    """Return ``k`` to ``counter`` of row ``row_id`` (what an earlier ``take`` took)."""
    column, table, key = _target(counter, k)
    result: Any = session.execute(
        update(table)
        .where(key == row_id)
        .values({column.name: column + k})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise LookupError(f"no row {row_id} in {table.name} to give back to")


def _target(counter: Counter, k: int) -> tuple[Column[Any], Table, Column[Any]]:
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise ValueError(f"a counter moves by a positive integer, not {k!r}")
    column = counter if isinstance(counter, Column) else counter.property.columns[0]
    table = column.table
    if not isinstance(table, Table) or len(table.primary_key.columns) != 1:
        raise TypeError("a counter lives in a table with a single-column primary key")
    (key,) = table.primary_key.columns
    return column, table, key
