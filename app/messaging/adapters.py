"""Messengers that do not leave the process: one that records, one that drops."""

from __future__ import annotations

import threading

from app.messaging.ports import Notice, SendResult, SendStatus


class FakeMessenger:
    """Records every notice (tests read ``sent``); ``fail_with`` makes each send raise it."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def send(self, notice: Notice) -> SendResult:
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.sent.append(notice)
        return SendResult(SendStatus.SENT)


class NullMessenger:
    """Sends nothing: for environments without a configured channel."""

    def send(self, notice: Notice) -> SendResult:
        return SendResult(SendStatus.SKIPPED, "no messenger configured")
