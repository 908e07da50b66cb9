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
