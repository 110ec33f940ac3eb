"""What an event is, and the topics the contexts announce."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Topic(StrEnum):
    MEMBER_JOINED = "member.joined"
    MEMBER_MERGED = "member.merged"
    TIER_CHANGED = "tier.changed"
    ORDER_RECORDED = "order.recorded"
    ORDER_REFUNDED = "order.refunded"
    POINTS_ADJUSTED = "points.adjusted"
    POINTS_EXPIRING = "points.expiring"


@dataclass(frozen=True)
class Event:
    """A fact about the domain; ``payload`` is plain JSON (ids, codes, amounts, ISO times)."""

    topic: str
    payload: dict[str, Any] = field(default_factory=dict)
    member_id: int | None = None
