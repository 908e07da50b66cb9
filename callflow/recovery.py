"""Time to recover after an abusive call: when it ends and how it reads on the console.

Pure: the shell hands in the time the call was ended (or now) and the configured minutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def recovery_ends(ended_at: datetime, minutes: int) -> datetime | None:
    """When recovery after a call ended at `ended_at` is over; None when recovery is off (0)."""
    if minutes <= 0:
        return None
    return ended_at + timedelta(minutes=minutes)


def time_left_text(seconds: int) -> str:
    """Seconds left, as a person reads them: "4 minutes 5 seconds", "45 seconds"."""
    minutes, rest = divmod(max(0, seconds), 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if rest or not minutes:
        parts.append(f"{rest} second{'s' if rest != 1 else ''}")
    return " ".join(parts)
