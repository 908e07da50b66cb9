"""Where a call is right now: the live call's state, and Twilio's words for calls."""

from __future__ import annotations

import re
from enum import StrEnum

# Twilio's id of a call; anything else in its place is refused (or, in a log, left out).
CALL_SID_PATTERN = re.compile(r"^CA[0-9a-fA-F]{32}$")


class CallState(StrEnum):
    """A live call's state (the values are those stored in Redis and read by the console)."""

    WAITING = "waiting"  # in their conference, nobody rung yet
    RINGING = "ringing"  # a member of staff's phone is ringing for them
    CONNECTED = "connected"
    MESSAGE = "message"  # hearing a message; nobody will be rung
    EMERGENCY = "emergency"  # put through to the emergency line
    VOICEMAIL = "voicemail"
    ENDED = "ended"  # a call that has ended stays ended

    @property
    def waiting(self) -> bool:
        """True while the caller waits for a person, so someone may still be rung for them."""
        return self in WAITING_STATES


WAITING_STATES = frozenset({CallState.WAITING, CallState.RINGING})

# Twilio's call statuses after which a leg (or the whole call) is over.
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
