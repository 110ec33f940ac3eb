"""Outbox handlers that turn events into notices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app import clock
from app.members import operations as members
from app.messaging.ports import Messenger, Notice, NoticeKind, SendStatus
from app.outbox.events import Topic
from app.outbox.models import OutboxMessage
from app.outbox.ports import Handler
from app.points import reminders
from app.points.models import ReminderStatus
from app.wechat.errors import WeChatCallFailed, WeChatErrorKind

EXPIRY_REMINDER = "messaging.points_expiring"


def expiry_reminder_handler(messenger: Messenger, *, mp_appid: str) -> Handler:
    """Sends the points-expiry notice to the member's mini-program openid."""

    def run(session: Session, message: OutboxMessage) -> str:
        payload = message.payload
        member = members.get_active(session, int(payload["member_id"]))
        openid = members.miniprogram_openid(session, member.id, mp_appid) if member else None
        if openid is None:
            reminders.mark_reminder(session, int(payload["reminder_id"]), ReminderStatus.SKIPPED)
            return "skipped: no mini-program identity"
        expires_at = clock.to_local(datetime.fromisoformat(payload["expires_at"]))
        notice = Notice(
            kind=NoticeKind.POINTS_EXPIRING,
            openid=openid,
            fields={"points": str(payload["points"]), "expires_on": expires_at.date().isoformat()},
            dedupe_id=f"outbox-{message.id}",
        )
        try:
            result = messenger.send(notice)
        except WeChatCallFailed as failure:
            if failure.kind is not WeChatErrorKind.RECIPIENT:
                raise  # retried with backoff, dead-lettered in the end
            reminders.mark_reminder(session, int(payload["reminder_id"]), ReminderStatus.SKIPPED)
            return f"skipped: wechat {failure.errcode}"
        sent = result.status is SendStatus.SENT
        status = ReminderStatus.SENT if sent else ReminderStatus.SKIPPED
        reminders.mark_reminder(session, int(payload["reminder_id"]), status)
        return f"{result.status}" + (f": {result.detail}" if result.detail else "")

    return Handler(EXPIRY_REMINDER, frozenset({Topic.POINTS_EXPIRING}), run)
