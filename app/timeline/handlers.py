"""The outbox handler that writes timeline rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.members import operations as members
from app.outbox.events import Topic
from app.outbox.models import OutboxMessage
from app.outbox.ports import Handler
from app.timeline.models import TimelineEntry

RECORD_TIMELINE = "timeline.record"

# What a timeline row keeps of each event's payload (ids it repeats are dropped).
_SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    Topic.MEMBER_JOINED: ("channel",),
    Topic.TIER_CHANGED: ("from", "to", "reason"),
    Topic.ORDER_RECORDED: (
        "order_id",
        "channel",
        "external_id",
        "store_code",
        "amount_cents",
        "points_earned",
    ),
    Topic.ORDER_REFUNDED: ("refund_id", "order_id", "amount_cents", "points_reversed"),
    Topic.POINTS_ADJUSTED: ("delta", "balance_after", "reason"),
    Topic.MEMBER_MERGED: ("from_member_id", "reason"),
}


def summary_of(message: OutboxMessage) -> dict[str, Any]:
    keys = _SUMMARY_KEYS.get(message.topic, ())
    return {key: message.payload.get(key) for key in keys}


def record_timeline(session: Session, message: OutboxMessage) -> str:
    """One row per event, on the member that survives today (an event recorded before a
    merge lands on the survivor, like the rows the merge step moved)."""
    if message.member_id is None:
        return "skipped: no member"
    member = members.get_active(session, message.member_id)
    if member is None:
        return "skipped: no such member"
    session.add(
        TimelineEntry(
            member_id=member.id,
            kind=message.topic,
            occurred_at=message.created_at,
            summary=summary_of(message),
            event_id=message.id,
        )
    )
    session.flush()
    return "recorded"


TIMELINE_HANDLER = Handler(RECORD_TIMELINE, frozenset(_SUMMARY_KEYS), record_timeline)
