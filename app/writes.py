"""Writing a hot path's new rows at once, as single INSERT statements, without the unit of
work's flush.

A flush costs far more CPU than the INSERT it sends: it sorts the session's pending
objects, collects their columns, runs the statement, then sets up every object's state.
For the rows a money path adds on every request (an order, its lines, a ledger entry, a
lot, an outbox message, a request record) ``insert_now`` sends the INSERT straight
through the session's connection, in its transaction, and hands back the object as if it
had been flushed: persistent, its key set, its Python-side defaults filled in. Later
changes to it are flushed as usual. ``insert_rows`` writes rows nobody reads back in one
statement; ``update_now`` changes columns of a persistent object's row by its key, and the
object with it, as if the change had been flushed; ``attach`` makes the object of a row a
composed read returned.

Neither runs the session's flush events, so neither is for rows something watches at
flush (``app.caching.ConfigCache``'s settings and tier ladder): it refuses those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import Insert, Table, Update, bindparam, event, insert, update
from sqlalchemy.orm import Mapper, Session, SessionTransaction, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from app.db import Base

M = TypeVar("M", bound=Base)
Columns = tuple[tuple[str, Any], ...]  # (attribute, column) pairs

# Models whose writes others learn of from the session's flush (app.caching): never here.
FLUSH_WATCHED: set[type[Base]] = set()
_WRITTEN = "app.writes.written"  # session.info: (transaction, object, inserted?) written here


def _track(session: Session, obj: Base, *, inserted: bool) -> None:
    current = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_WRITTEN, []).append((current, obj, inserted))


@event.listens_for(Session, "after_soft_rollback")
def _forget_written(session: Session, previous: SessionTransaction) -> None:
    """A rollback (a savepoint's too) takes what was written inside it, as it would a
    flush's: an inserted object leaves the session (the database may hand its key out
    again), an updated one is expired (its row has its old values back)."""
    written: list[tuple[SessionTransaction, Base, bool]] = session.info.get(_WRITTEN, [])
    kept = []
    for transaction, obj, inserted in written:
        if not _within(transaction, previous):
            kept.append((transaction, obj, inserted))
        elif obj in session:
            if inserted:
                session.expunge(obj)
            else:
                session.expire(obj)
    written[:] = kept


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _keep_written(session: Session) -> None:
    """The outermost commit makes it all durable; a savepoint's release keeps it tracked
    (its transaction's ancestors may still roll back)."""
    if session.get_nested_transaction() is None:
        session.info.pop(_WRITTEN, None)


@cache
def _shape(model: type[Base]) -> tuple[Insert, Columns, str]:
    """The model's INSERT (built once), its (attribute, column) pairs and its key's
    attribute."""
    mapper: Mapper[Any] = model.__mapper__
    table = cast(Table, mapper.local_table)
    (key,) = mapper.primary_key
    columns = tuple((prop.key, prop.columns[0]) for prop in mapper.column_attrs)
    return insert(table), columns, mapper.get_property_by_column(key).key


def _refuse_watched(model: type[Base]) -> None:
    if model in FLUSH_WATCHED:
        raise TypeError(f"{model.__name__} is watched at flush: write it through the session")


def _default(column: Any) -> Any:
    default = column.default
    if default is None or not (default.is_scalar or default.is_callable):
        return None
    return default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]


def insert_now(session: Session, obj: M) -> M:
    """INSERT ``obj``'s row now, in the session's transaction; ``obj`` becomes persistent
    with its key. Objects still pending in the session are flushed first (a row may refer
    to them). Raises IntegrityError as the INSERT would."""
    _refuse_watched(type(obj))
    if session.new:
        session.flush()
    statement, columns, key = _shape(type(obj))
    state = obj.__dict__
    values: dict[str, Any] = {}
    for attribute, column in columns:
        if attribute in state:
            values[column.key] = state[attribute]
        elif column.default is not None:
            values[column.key] = state[attribute] = _default(column)
        elif not column.primary_key:
            state[attribute] = None  # left out of the INSERT, as a flush leaves it: NULL
    result = session.connection().execute(statement, values)
    if state.get(key) is None:
        state[key] = result.inserted_primary_key[0]  # type: ignore[index]
    make_transient_to_detached(obj)
    session.add(obj)
    _track(session, obj, inserted=True)
    return obj


def attach(session: Session, model: type[M], values: Mapping[str, Any]) -> M:
    """The persistent object of a row read outside the ORM (``values`` names its key and
    some columns; the others load on use): the session's own object when it holds one."""
    _, _, key = _shape(model)
    existing = session.identity_map.get(
        model.__mapper__.identity_key_from_primary_key((values[key],))
    )
    if existing is not None:
        return cast(M, existing)
    obj = model(**values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def insert_rows(session: Session, model: type[Base], rows: Iterable[Mapping[str, Any]]) -> None:
    """INSERT rows of ``model`` nobody reads back in this transaction, in one statement
    (Python-side defaults filled in; every row names the same columns)."""
    _refuse_watched(model)
    statement, columns, _ = _shape(model)
    values = []
    for row in rows:
        full = dict(row)
        for attribute, column in columns:
            if attribute not in full and column.default is not None:
                full[attribute] = _default(column)
        values.append(
            {column.key: full[attribute] for attribute, column in columns if attribute in full}
        )
    if values:
        if session.new:
            session.flush()
        session.connection().execute(statement, values)


@cache
def _update_shape(model: type[Base]) -> tuple[Update, str, Columns]:
    """The model's UPDATE by key (its SET clause is the parameters given), the key's
    attribute, and the (attribute, column) pairs with an ``onupdate``."""
    mapper: Mapper[Any] = model.__mapper__
    table = cast(Table, mapper.local_table)
    (key,) = mapper.primary_key
    statement = update(table).where(key == bindparam("key_"))
    touched = tuple(
        (prop.key, prop.columns[0])
        for prop in mapper.column_attrs
        if prop.columns[0].onupdate is not None
    )
    return statement, mapper.get_property_by_column(key).key, touched


def update_now(session: Session, obj: Base, **values: Any) -> None:
    """UPDATE the columns ``values`` names (and those with an ``onupdate``) of persistent
    ``obj``'s row now, by its key, in the session's transaction; ``obj`` holds the new
    values as committed. Other changes to ``obj`` stay pending for the next flush."""
    update_each(session, [(obj, values)])


def update_each(session: Session, changes: Sequence[tuple[Base, dict[str, Any]]]) -> None:
    """``update_now`` for several objects of one model changing the same columns: one
    statement (executemany)."""
    if not changes:
        return
    model = type(changes[0][0])
    _refuse_watched(model)
    statement, key, touched = _update_shape(model)
    columns = model.__mapper__.columns
    rows = []
    for obj, values in changes:
        for attribute, column in touched:
            if attribute not in values:
                values[attribute] = column.onupdate.arg(None)
        rows.append(
            {columns[name].key: value for name, value in values.items()}
            | {"key_": getattr(obj, key)}
        )
    connection = session.connection()
    result = connection.execute(statement, rows[0] if len(rows) == 1 else rows)
    counted = len(rows) == 1 or connection.dialect.supports_sane_multi_rowcount
    if counted and result.rowcount != len(rows):
        raise StaleDataError(f"{model.__name__}: {result.rowcount} of {len(rows)} rows updated")
    for obj, values in changes:
        for name, value in values.items():
            set_committed_value(obj, name, value)
        _track(session, obj, inserted=False)
