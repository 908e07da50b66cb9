"""What a conference status callback says beyond the event itself: whether the warning played
(policy 4.5), and who left the call and why.

webhooks/voice.py receives the callback and records the event; this reads the rest of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

from callflow import events
from callflow.announcement import announcement_outcome, leave_reason, party_of
from callflow.events import Event
from store.live_call import LiveCall
from webhooks import twilio_params as tp
from webhooks.announcements import WARNING_PATH

# Twilio's free-text reasons are kept short and printable in the call log.
_REASON_CHARS = re.compile(r"[^\w .,:;()'/-]")
MAX_REASON_CHARS = 200
CALL_STATUS_PATTERN = re.compile(r"^[a-z-]{1,20}$")


def _short(text: str) -> str:
    return _REASON_CHARS.sub("", text)[:MAX_REASON_CHARS].strip()


def follow_up(caller_sid: str, live_call: Callable[[], LiveCall], form: Mapping[str, str],
              now: datetime) -> tuple[tuple[Event, ...], LiveCall | None]:
    """The events and live-call changes a conference callback implies, besides its own event.

    `live_call` reads the call's live state (only a departure needs it: who left).
    """
    name = form.get(tp.STATUS_CALLBACK_EVENT, "")
    participant = form.get(tp.CALL_SID, "")
    sequence = form.get(tp.SEQUENCE_NUMBER, "")
    outcome = announcement_outcome(name)
    if outcome is not None:
        # Only the warning matters here; other announcements (a supervisor's) pass by.
        if urlsplit(form.get(tp.ANNOUNCE_URL, "")).path != WARNING_PATH:
            return (), None
        reason = _short(form.get(tp.REASON_ANNOUNCEMENT_FAILED, ""))
        return ((events.warning_heard(now, outcome.value, participant, sequence, reason),),
                LiveCall(warning_state=outcome.value))
    if name == tp.PARTICIPANT_LEAVE and participant:
        live = live_call()
        staff_leg = bool(live.ringing_leg_sid) and participant == live.ringing_leg_sid
        party = party_of(participant, caller_sid, staff_leg)
        status = form.get(tp.PARTICIPANT_CALL_STATUS, "")
        left = events.left_conference(
            now, participant, party.value,
            leave_reason(form.get(tp.REASON_PARTICIPANT_LEFT, "")).value,
            status if CALL_STATUS_PATTERN.match(status) else "", sequence,
            live.staff_id if staff_leg else None)
        return (left,), None
    return (), None
