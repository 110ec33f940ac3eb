"""What subscribes to the outbox: a handler, named, for some topics.

Contexts that react to events build ``Handler`` values; the composition root hands them to
the drain (``outbox.services.drain``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.outbox.models import OutboxMessage

# A handler answers a short outcome to record ("sent", "skipped: no openid") or None.
HandlerFn = Callable[[Session, OutboxMessage], str | None]


@dataclass(frozen=True)
class Handler:
    name: str  # stable: it is half of the delivery's unique key
    topics: frozenset[str]
    run: HandlerFn
