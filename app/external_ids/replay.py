"""The one rule of every call a partner names by its external id.

The first request under ``(partner, kind, channel, external_id)`` runs and its answer is
stored with its fingerprint, in the transaction of its effect. The same id again:
- with the same fingerprint, the stored answer, exactly, and nothing runs;
- with any other, 409 ``idempotency_mismatch`` that says nothing of the first request.
Concurrent first sends race on the unique key (or on the effect's own): the losers retry
in a fresh transaction and meet the winner's record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import IdempotencyMismatch
from app.external_ids import rules
from app.external_ids.models import ExternalRequest
from app.uow import UnitOfWork

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


class ExternalIdTaken(Exception):
    """Raised by a ``work`` that finds its effect already recorded under the key (its own
    unique row): a concurrent twin committed it since this attempt looked, or it was
    recorded before fingerprints were kept."""


def mismatch() -> IdempotencyMismatch:
    """The refusal of a reused external id: no detail of what it was used for."""
    return IdempotencyMismatch(MISMATCH_MESSAGE)


def earlier_answer(session: Session, key: ExternalKey, digest: str) -> dict[str, Any] | None:
    record = session.scalars(
        select(ExternalRequest).where(
            ExternalRequest.partner_id == key.partner_id,
            ExternalRequest.kind == key.kind,
            ExternalRequest.channel == key.channel,
            ExternalRequest.external_id == key.external_id,
        )
    ).one_or_none()
    if record is None:
        return None
    if record.fingerprint != digest:
        raise mismatch()
    return dict(record.answer)


def run_once(
    *,
    uow: UnitOfWork,
    key: ExternalKey,
    request: Mapping[str, Any],
    work: Callable[[Session], dict[str, Any]],
) -> Answered:
    """Run ``work`` (the effect, in the unit of work's open transaction, answering a JSON
    document) once per key; commit it with its record. ``request`` is every field of the
    request as parsed, the member reference included. ``work`` raises ExternalIdTaken when
    it finds its effect's own row already there."""
    return uow.run(_run_once, key, rules.fingerprint(request), work)


def _run_once(
    uow: UnitOfWork, key: ExternalKey, digest: str, work: Callable[[Session], dict[str, Any]]
) -> Answered:
    session = uow.session
    earlier = earlier_answer(session, key, digest)
    if earlier is not None:
        return Answered(earlier, replayed=True)
    try:
        answer = work(session)
    except ExternalIdTaken:
        uow.rollback()  # keep nothing of this attempt: the twin's effect stands
        # Each statement reads what is committed (READ COMMITTED; SQLite runs one writer
        # at a time): the twin's record is there now, with its effect.
        earlier = earlier_answer(session, key, digest)
        if earlier is None:  # recorded before requests had fingerprints
            raise mismatch() from None
        return Answered(earlier, replayed=True)
    session.add(
        ExternalRequest(
            partner_id=key.partner_id,
            kind=key.kind,
            channel=key.channel,
            external_id=key.external_id,
            fingerprint=digest,
            answer=answer,
        )
    )
    session.flush()  # the unique key decides between concurrent first sends
    return Answered(answer, replayed=False)
