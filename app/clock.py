"""The one source of "now". Stored times are UTC; business days are in the brand's zone.

Tests freeze time with time_machine, which this module honours because it reads the
system clock on every call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_tz = ZoneInfo("Asia/Shanghai")


def configure(timezone_name: str) -> None:
    global _tz  # noqa: PLW0603 - set once by create_app from TIMEZONE
    _tz = ZoneInfo(timezone_name)


def business_tz() -> ZoneInfo:
    return _tz


def now() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def local_now() -> datetime:
    return now().astimezone(_tz)


def today() -> date:
    """The business day in the brand's time zone."""
    return local_now().date()


def to_local(moment: datetime) -> datetime:
    return moment.astimezone(_tz)
