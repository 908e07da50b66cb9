"""The one place the service reads the clock; the core is always handed the time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def local_today(tz: ZoneInfo, now: datetime | None = None) -> date:
    """Today's date in the contact centre's time zone."""
    return (now or now_utc()).astimezone(tz).date()
