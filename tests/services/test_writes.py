"""app.writes: rows written at once through the session's connection, the objects left as
a flush would leave them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from sqlalchemy import delete, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from app.caching import ConfigCache
from app.orders.models import Order
from app.outbox.models import OutboxMessage
from app.settings.models import SettingsDocument
from app.tiers.models import Tier
from app.wiring import CONFIG_MODELS
from app.writes import FLUSH_WATCHED, insert_now, insert_rows, update_each, update_now
from tests.factories import MemberFactory

T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


def message(topic: str = "t.one") -> OutboxMessage:
    return OutboxMessage(topic=topic, payload={"n": "一"}, member_id=None)


def row_of(session: Session, message_id: int) -> tuple[object, ...]:
    return tuple(
        session.execute(
            select(OutboxMessage.topic, OutboxMessage.attempts, OutboxMessage.available_at).where(
                OutboxMessage.id == message_id
            )
        ).one()
    )


def test_insert_now_writes_the_row_and_leaves_the_object_persistent(session: Session) -> None:
    with time_machine.travel(T0, tick=False):
        written = insert_now(session, message())

    state = inspect(written)
    assert state.persistent and not session.new and not session.dirty
    assert isinstance(written.id, int)
    # Python-side defaults are on the object and in the row, with no read back
    assert (written.attempts, written.created_at, written.available_at) == (0, T0, T0)
    assert row_of(session, written.id) == ("t.one", 0, T0)
    assert session.get(OutboxMessage, written.id) is written


def test_a_later_change_is_flushed_as_usual(session: Session) -> None:
    written = insert_now(session, message())
    written.attempts = 3
    session.flush()
    assert row_of(session, written.id)[1] == 3


def test_a_rollback_takes_the_row_and_the_object_leaves_the_session(session: Session) -> None:
    written = insert_now(session, message())
    written_id = written.id
    session.rollback()

    assert written not in session
    assert session.get(OutboxMessage, written_id) is None
    again = insert_now(session, message("t.again"))  # the key may be handed out again
    assert again in session and row_of(session, again.id)[0] == "t.again"


def test_pending_objects_are_flushed_before_the_insert(session: Session) -> None:
    pending = message("t.pending")
    session.add(pending)
    written = insert_now(session, message("t.after"))
    assert pending.id is not None and pending.id < written.id


def test_update_now_and_update_each_write_by_key_and_mark_committed(session: Session) -> None:
    one, two = insert_now(session, message()), insert_now(session, message())

    update_now(session, one, attempts=5)
    update_each(session, [(one, {"attempts": 6}), (two, {"attempts": 7})])

    assert not session.dirty
    assert (one.attempts, two.attempts) == (6, 7)
    assert (row_of(session, one.id)[1], row_of(session, two.id)[1]) == (6, 7)


def test_insert_rows_writes_them_with_their_defaults(session: Session) -> None:
    with time_machine.travel(T0, tick=False):
        insert_rows(
            session,
            OutboxMessage,
            [{"topic": "t.bulk", "payload": {}}, {"topic": "t.bulk", "payload": {"a": 1}}],
        )
    rows = session.execute(
        select(OutboxMessage.attempts, OutboxMessage.created_at).where(
            OutboxMessage.topic == "t.bulk"
        )
    ).all()
    assert [tuple(row) for row in rows] == [(0, T0), (0, T0)]


@pytest.mark.parametrize("model", CONFIG_MODELS)
def test_rows_watched_at_flush_are_refused(session: Session, redis: object, model: type) -> None:
    ConfigCache(redis, CONFIG_MODELS).install(sessionmaker())  # as create_app does
    assert {SettingsDocument, Tier} <= FLUSH_WATCHED
    with pytest.raises(TypeError, match="watched at flush"):
        insert_now(session, model())


def test_a_savepoint_rolled_back_takes_only_what_was_written_inside_it(session: Session) -> None:
    before = insert_now(session, message("t.before"))
    savepoint = session.begin_nested()
    inside = insert_now(session, message("t.inside"))
    savepoint.rollback()

    assert before in session and inside not in session
    assert row_of(session, before.id)[0] == "t.before"
    assert session.get(OutboxMessage, inside.id) is None


def test_an_update_rolled_back_with_a_savepoint_is_expired_to_the_rows_value(
    session: Session,
) -> None:
    written = insert_now(session, message())
    savepoint = session.begin_nested()
    update_now(session, written, attempts=9)
    savepoint.rollback()

    assert written.attempts == 0  # expired, read again: the row's value
    assert row_of(session, written.id)[1] == 0


def test_an_update_of_a_row_that_is_gone_is_stale(session: Session) -> None:
    written = insert_now(session, message())
    session.execute(delete(OutboxMessage).where(OutboxMessage.id == written.id))

    with pytest.raises(StaleDataError):
        update_now(session, written, attempts=1)


def test_a_column_left_unset_is_sql_null_as_a_flush_leaves_it(session: Session) -> None:
    member = MemberFactory()
    session.flush()
    order = insert_now(
        session,
        Order(
            channel="pos",
            external_id="e-1",
            member_id=member.id,
            paid_at=T0,
            amount_cents=100,
        ),
    )
    assert (order.tier_after, order.points_earned) == (None, 0)  # unset; default
    stored = session.execute(
        select(text("tier_after IS NULL")).select_from(Order).where(Order.id == order.id)
    ).scalar_one()
    assert stored  # not the JSON text 'null'
