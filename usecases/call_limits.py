"""Carrying out call limits (policy 4.6) on a live call: counting it, warning, ending it.

Each step is done once however often its job runs: the count is a set member, the warning is
done once per call, and the end shares the agent's end key, so a call is ended only once,
whoever ends it first.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from callflow.call_limits import LimitEnd, ends_at_limit
from callflow.call_state import CallState
from callflow.events import Event, EventKind
from config import clock
from store.call_events import Batch
from store.call_limits import CallTally
from store.live_call import LIVE_TTL_SECONDS, LiveCall, read_live
from store.twilio_rest import TwilioRefused, announce_to_participant, redirect_call
from store.voice_urls import voice_url
from usecases.bootstrap import Services
from usecases.calls import CONFERENCE_SID_PATTERN
from usecases.idempotency import OnceOnly, RepeatRefused, action_key

TIME_WARNING_PATH = "/announce/time-warning"
TIME_CLOSING_PATH = "/announce/time-closing"
ALREADY_ENDED = "call already ended"


def count_call(services: Services, call_sid: str, entry_id: int, answered: str) -> str:
    """Count a call put through towards its caller's frequency limit."""
    added = CallTally(services.worker_redis).count(entry_id, call_sid,
                                                   datetime.fromisoformat(answered))
    return "counted" if added else "already counted"


def _over(live: LiveCall) -> bool:
    """Nothing to warn or end: the call is over, ended already, or somewhere the limit does not
    reach (the emergency line, voicemail)."""
    return not ends_at_limit(live.state) or bool(live.ended_by_agent)


def warn_of_time_limit(services: Services, call_sid: str, minutes: int) -> str:
    """Play the time warning to the caller alone, two minutes before the agreed length."""
    live = read_live(services.worker_redis, call_sid)
    if _over(live):
        return "nothing to do: the call is over, or with the emergency line or voicemail"
    conference_sid = live.conference_sid or ""
    if live.state is not CallState.CONNECTED or not CONFERENCE_SID_PATTERN.match(conference_sid):
        # Still waiting for a person: the hold music goes on, and the end comes on time.
        return "caller not connected to a member of staff; no warning played"

    def warn() -> dict[str, Any]:
        url = voice_url(services.settings.public_base_url, TIME_WARNING_PATH, minutes=minutes)
        try:
            announce_to_participant(services.twilio, conference_sid, call_sid, announce_url=url)
        except TwilioRefused:
            return {"warned": False}  # the caller has gone meanwhile: nothing to warn
        now = clock.now_utc()
        services.event_sink.emit(Batch.of(call_sid, Event(
            EventKind.TIME_WARNING, "time-warning", now,
            {"minutes": minutes, "by": "callflow"})))
        return {"warned": True, "at": now.isoformat()}

    outcome = OnceOnly(services.worker_redis).run(
        action_key("time-warning", call_sid), "time-warning", LIVE_TTL_SECONDS, warn,
        "the time warning is already being played")
    return "time warning played" if outcome.result["warned"] else "caller gone; no warning"


def end_at_time_limit(services: Services, call_sid: str, minutes: int) -> str:
    """At the agreed length: the closing statement, then the call ends; logged like an agent's
    end (the same event and the same once-only key, so an agent's end and this are one end)."""
    live = read_live(services.worker_redis, call_sid)
    if _over(live):
        return "nothing to do: the call is over, or with the emergency line or voicemail"
    once = OnceOnly(services.worker_redis)
    key = action_key("end", call_sid)
    reason = LimitEnd.CALL_LENGTH.value
    fingerprint = json.dumps([reason, ""])

    def finish() -> dict[str, Any]:
        url = voice_url(services.settings.public_base_url, TIME_CLOSING_PATH)
        try:
            redirect_call(services.twilio, call_sid, url)
        except TwilioRefused:
            return {"ended": False}  # the caller hung up meanwhile
        now = clock.now_utc()
        detail: dict[str, object] = {"by": "callflow", "reason": reason, "note": "",
                                     "minutes": minutes, "closing_statement": True,
                                     "wrap_up_owed": False}
        services.event_sink.emit(Batch.of(
            call_sid, Event(EventKind.ENDED_BY_AGENT, "ended_by_agent", now, detail),
            live=LiveCall(ended_by_agent=True, end_reason=reason)))
        return {"call_sid": call_sid, "ended": True, "reason": reason, "note": "",
                "closing_statement": True, "wrap_up_owed": False, "incident_id": None,
                "recovery_until": None, "at": now.isoformat()}

    try:
        outcome = once.run(key, fingerprint, LIVE_TTL_SECONDS, finish, ALREADY_ENDED)
    except RepeatRefused:
        return "already ended by a member of staff"
    return "ended at the agreed call length" if outcome.result["ended"] else "caller gone"
