"""The Messenger port: what the domain asks of a channel that reaches a member."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class NoticeKind(StrEnum):
    POINTS_EXPIRING = "points_expiring"


@dataclass(frozen=True)
class Notice:
    """``fields`` are plain texts the adapter lays out for its channel;
    ``dedupe_id`` is stable across retries of the same notice."""

    kind: NoticeKind
    openid: str
    fields: dict[str, str] = field(default_factory=dict)
    dedupe_id: str = ""


class SendStatus(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # permanent for this recipient (no subscription, not following)


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    detail: str = ""


class Messenger(Protocol):
    def send(self, notice: Notice) -> SendResult:
        """Deliver or answer SKIPPED; raise ``WeChatCallFailed`` for what may succeed later
        (transient, token, quota) or must be looked at (a bad template)."""
        ...
