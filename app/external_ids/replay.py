"""The one rule of every call a partner names by its external id.

The first request under ``(partner, kind, channel, external_id)`` runs and its answer is
recorded with its fingerprint, in the transaction of its effect. The same id again:
- with the same fingerprint, the recorded answer, exactly, and nothing runs;
- with any other, 409 ``idempotency_mismatch`` that says nothing of the first request.
Concurrent first sends race on the unique key (or on the effect's own): the losers retry
in a fresh transaction and meet the winner's record.

Where the record lives is the use case's ``Store``: by default an ``external_requests``
row; a till spend's is its own ledger entry, which carries the fingerprint and the whole
answer already. A hot use case reads its record in the statement that locks its rows
(``work_reads_record``) and hands it to ``Attempt.replay``: a replay then costs one read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from app.errors import IdempotencyMismatch
from app.external_ids import rules
from app.external_ids.models import ExternalRequest
from app.uow import UnitOfWork
from app.writes import insert_now

MISMATCH_MESSAGE = "This external_id was already used for a different request."


@dataclass(frozen=True)
class ExternalKey:
    partner_id: int
    kind: str
    external_id: str
    channel: str = ""


@dataclass(frozen=True)
class Answered:
    answer: dict[str, Any]
    replayed: bool


@dataclass(frozen=True)
class Stored:
    """A recorded request: its fingerprint (None: recorded before fingerprints were kept)
    and its answer."""

    fingerprint: str | None
    answer: dict[str, Any]


class ExternalIdTaken(Exception):
    """Raised by a ``work`` that finds its effect already recorded under the key (its own
    unique row): a concurrent twin committed it since this attempt looked, or it was
    recorded before fingerprints were kept."""


class Recorded(Exception):
    """The request was answered before: ``answer`` is that first answer."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("answered before")
        self.answer = answer


class Store(Protocol):
    def find(self, session: Session, key: ExternalKey) -> Stored | None:
        """The record of the key, read in the current transaction."""
        ...

    def keep(self, session: Session, attempt: Attempt, answer: dict[str, Any]) -> None:
        """Record the first answer with the effect (flushed by the caller)."""
        ...


def mismatch() -> IdempotencyMismatch:
    """The refusal of a reused external id: no detail of what it was used for."""
    return IdempotencyMismatch(MISMATCH_MESSAGE)


@dataclass(frozen=True)
class Attempt:
    """One run of a use case under its key and its request's fingerprint."""

    key: ExternalKey
    digest: str

    def replay(self, stored: Stored | None) -> None:
        """Nothing if the key was never used; otherwise raise ``Recorded`` with the first
        answer for the same request, or the mismatch for another (or an unknown) one."""
        if stored is None:
            return
        if stored.fingerprint != self.digest:
            raise mismatch()
        raise Recorded(dict(stored.answer))


# The row of a key, its values bound by RequestTable.params.
_OF_KEY = and_(
    ExternalRequest.partner_id == bindparam("record_partner_id"),
    ExternalRequest.kind == bindparam("record_kind"),
    ExternalRequest.channel == bindparam("record_channel"),
    ExternalRequest.external_id == bindparam("record_external_id"),
)


class RequestTable:
    """Records in ``external_requests``: one row per key, fingerprint and answer."""

    @staticmethod
    def reads() -> dict[str, Any]:
        """The key's record as scalar subqueries, for a use case's own first statement;
        the key's values are bound by ``params``."""
        return {
            "record_fingerprint": select(ExternalRequest.fingerprint)
            .where(_OF_KEY)
            .scalar_subquery(),
            "record_answer": select(ExternalRequest.answer).where(_OF_KEY).scalar_subquery(),
        }

    @staticmethod
    def params(key: ExternalKey) -> dict[str, Any]:
        return {
            "record_partner_id": key.partner_id,
            "record_kind": key.kind,
            "record_channel": key.channel,
            "record_external_id": key.external_id,
        }

    @staticmethod
    def read_back(row: Any) -> Stored | None:
        """The record from the columns ``reads`` added to a row."""
        if row.record_fingerprint is None:
            return None
        return Stored(row.record_fingerprint, dict(row.record_answer))

    def find(self, session: Session, key: ExternalKey) -> Stored | None:
        query = select(ExternalRequest).where(_OF_KEY)
        record = session.scalars(query, self.params(key)).one_or_none()
        return None if record is None else Stored(record.fingerprint, dict(record.answer))

    def keep(self, session: Session, attempt: Attempt, answer: dict[str, Any]) -> None:
        key = attempt.key
        insert_now(
            session,
            ExternalRequest(
                partner_id=key.partner_id,
                kind=key.kind,
                channel=key.channel,
                external_id=key.external_id,
                fingerprint=attempt.digest,
                answer=answer,
            ),
        )


REQUEST_TABLE = RequestTable()


def run_once(
    *,
    uow: UnitOfWork,
    key: ExternalKey,
    request: Mapping[str, Any],
    work: Callable[[Session, Attempt], dict[str, Any]],
    store: Store = REQUEST_TABLE,
    work_reads_record: bool = False,
) -> Answered:
    """Run ``work`` (the effect, in the unit of work's open transaction, answering a JSON
    document) once per key; commit it with its record. ``request`` is every field of the
    request as parsed, the member reference included. ``work`` raises ExternalIdTaken when
    it finds its effect's own row already there. With ``work_reads_record``, ``work``
    reads the record itself and passes it to ``attempt.replay`` before any effect."""
    attempt = Attempt(key, rules.fingerprint(request))
    return uow.run(_run_once, attempt, work, store, work_reads_record)


def _run_once(
    uow: UnitOfWork,
    attempt: Attempt,
    work: Callable[[Session, Attempt], dict[str, Any]],
    store: Store,
    work_reads_record: bool,
) -> Answered:
    session = uow.session
    try:
        if not work_reads_record:
            attempt.replay(store.find(session, attempt.key))
        answer = work(session, attempt)
    except Recorded as recorded:
        return Answered(recorded.answer, replayed=True)
    except ExternalIdTaken:
        uow.rollback()  # keep nothing of this attempt: the twin's effect stands
        # Each statement reads what is committed (READ COMMITTED; SQLite runs one writer
        # at a time): the twin's record is there now, with its effect.
        return _the_twins_answer(store.find(session, attempt.key), attempt)
    store.keep(session, attempt, answer)
    session.flush()  # the unique key decides between concurrent first sends
    return Answered(answer, replayed=False)


def _the_twins_answer(stored: Stored | None, attempt: Attempt) -> Answered:
    if stored is None:  # the effect is there, recorded before requests had fingerprints
        raise mismatch()
    try:
        attempt.replay(stored)
    except Recorded as recorded:
        return Answered(recorded.answer, replayed=True)
    raise AssertionError("a stored record always replays or mismatches")
