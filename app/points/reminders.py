"""Expiry reminders: what the notice handler writes back once it has sent (or skipped) one."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.points.models import ExpiryReminder, ReminderStatus


def mark_reminder(session: Session, reminder_id: int, status: ReminderStatus) -> None:
    """Sent or skipped; a reminder already gone (purged) is left alone."""
    reminder = session.get(ExpiryReminder, reminder_id)
    if reminder is not None:
        reminder.status = status
