"""The template for a counter on a hot row (stock, seats, quotas): copy it for each new one.

A counter changes only through ``app.counters.take`` / ``give_back`` (one conditional
UPDATE, rowcount checked), inside a use case run by ``uow.run``. Its tests:
- on MariaDB, many takers at once against a small counter: exactly as many succeed as
  there were, the counter ends at zero, the others get the domain error;
- on any database, a property test: whatever the sequence of takes and give-backs, the
  counter never goes negative and it moved by exactly what succeeded.
Here the counter lives in a scratch table the test creates; a context's test uses its
own table, its own use case and its own error.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.counters import give_back, take
from app.db import make_engine, make_session_factory
from app.errors import OutOfStock
from app.uow import UnitOfWork

scratch = MetaData()
stock = Table(
    "counter_template_stock",
    scratch,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("quantity", Integer, nullable=False),
)


class ScratchBase(DeclarativeBase):
    pass


class Item(ScratchBase):
    """A mapped counter: ``take`` accepts ``Item.quantity`` as well as a table's column."""

    __tablename__ = "counter_template_items"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    quantity: Mapped[int]


def out_of_stock() -> OutOfStock:
    return OutOfStock("Sold out.")


def take_one(uow: UnitOfWork, row_id: int) -> str:
    """The use case under test: take one, or OutOfStock (rolled back by uow.run)."""
    take(uow.session, stock.c.quantity, row_id, 1, error=out_of_stock)
    return "taken"


def quantity(engine: Engine, row_id: int) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(stock.c.quantity).where(stock.c.id == row_id)))


@pytest.fixture
def scratch_engine(database_url: str) -> Iterator[Engine]:
    """An engine with a connection for every thread, and the scratch table, dropped after."""
    engine = make_engine(database_url, pool_size=60, max_overflow=0)
    scratch.create_all(engine)
    yield engine
    scratch.drop_all(engine)
    engine.dispose()


@pytest.mark.mariadb
def test_fifty_takers_of_twenty_units_take_exactly_twenty(scratch_engine: Engine) -> None:
    with scratch_engine.begin() as connection:
        connection.execute(insert(stock).values(id=1, quantity=20))
    factory = make_session_factory(scratch_engine)
    start = threading.Barrier(50)

    def run(_: int) -> str:
        uow = UnitOfWork(factory)  # one per thread: a unit of work is not shared
        start.wait(timeout=10)
        try:
            return uow.run(take_one, 1)
        except OutOfStock:
            return "out_of_stock"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = Counter(pool.map(run, range(50)))

    assert outcomes == {"taken": 20, "out_of_stock": 30}
    assert quantity(scratch_engine, 1) == 0


def test_a_refused_take_changes_nothing_and_give_back_returns(scratch_engine: Engine) -> None:
    with scratch_engine.begin() as connection:
        connection.execute(insert(stock).values(id=2, quantity=3))
    uow = UnitOfWork(make_session_factory(scratch_engine))
    with uow:
        take(uow.session, stock.c.quantity, 2, 2, error=out_of_stock)
        with pytest.raises(OutOfStock):
            take(uow.session, stock.c.quantity, 2, 2, error=out_of_stock)
        with pytest.raises(OutOfStock):  # no such row: nothing to take either
            take(uow.session, stock.c.quantity, 99, 1, error=out_of_stock)
        give_back(uow.session, stock.c.quantity, 2, 1)
        with pytest.raises(LookupError):
            give_back(uow.session, stock.c.quantity, 99, 1)
        uow.commit()
    assert quantity(scratch_engine, 2) == 2


@pytest.mark.parametrize("k", [0, -1, True, 1.5])
def test_a_counter_moves_only_by_a_positive_integer(scratch_engine: Engine, k: object) -> None:
    uow = UnitOfWork(make_session_factory(scratch_engine))
    with uow, pytest.raises(ValueError):
        take(uow.session, stock.c.quantity, 1, k, error=out_of_stock)  # type: ignore[arg-type]


Step = tuple[str, int]  # ("take" | "give_back", k)


@settings(max_examples=60, deadline=None)
@given(
    initial=st.integers(min_value=0, max_value=30),
    steps=st.lists(
        st.tuples(st.sampled_from(["take", "give_back"]), st.integers(1, 12)), max_size=40
    ),
)
def test_the_counter_never_goes_negative_and_moves_by_what_succeeded(
    initial: int, steps: list[Step]
) -> None:
    engine = create_engine("sqlite://")  # its own database: hypothesis runs many examples
    ScratchBase.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(Item).values(id=1, quantity=initial))
    uow = UnitOfWork(make_session_factory(engine))
    taken = given_back = 0
    for action, k in steps:
        with uow:
            if action == "give_back":
                give_back(uow.session, Item.quantity, 1, k)
                given_back += k
            else:
                try:
                    take(uow.session, Item.quantity, 1, k, error=out_of_stock)
                    taken += k
                except OutOfStock:
                    pass
            uow.commit()
            now = uow.session.scalar(select(Item.quantity).where(Item.id == 1))
        assert now is not None and now >= 0
    with uow:
        final = uow.session.scalar(select(Item.quantity).where(Item.id == 1))
    assert final == initial - taken + given_back
    engine.dispose()
