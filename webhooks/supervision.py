"""Twilio's status callback for a supervisor's leg: when it ends, they have left the call.

Signed like every Twilio webhook; it records the step and forgets the leg, nothing else.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, request
from werkzeug.exceptions import BadRequest

from callflow.call_state import CALL_SID_PATTERN, FINAL_STATUSES
from callflow.events import Event, EventKind
from config import clock
from config.logging_setup import clear_call_sid, set_call_sid
from store.call_events import Batch
from store.help_alerts import Supervisors
from store.twilio_rest import CALL_STATUS_COMPLETED
from store.voice_urls import VOICE_PREFIX
from usecases.bootstrap import services_of
from usecases.supervision import SUPERVISOR_STATUS_PATH
from webhooks import twilio_params as tp
from webhooks.signature import twilio_form, twilio_signed

supervisor_calls = Blueprint("supervisor_calls", __name__, url_prefix=VOICE_PREFIX)
STAFF_ID_PATTERN = re.compile(r"^\d{1,9}$")
CALL_STATUS_PATTERN = re.compile(r"^[a-z-]{1,20}$")
NO_CONTENT = ("", 204)


def _matched(value: str, pattern: re.Pattern[str], name: str) -> str:
    if not pattern.match(value or ""):
        raise BadRequest(f"parameter {name} is missing or malformed")
    return value


@supervisor_calls.teardown_request
def _forget_call_sid(_error: BaseException | None) -> None:
    clear_call_sid()


@supervisor_calls.post(SUPERVISOR_STATUS_PATH)
@twilio_signed
def supervisor_status():
    """A supervisor's leg ended (they hung up, the call ended, or they never answered)."""
    sid = _matched(request.args.get("call", ""), CALL_SID_PATTERN, "call")
    set_call_sid(sid)
    staff_id = int(_matched(request.args.get("staff", ""), STAFF_ID_PATTERN, "staff"))
    status = _matched(twilio_form().get(tp.CALL_STATUS, ""), CALL_STATUS_PATTERN, tp.CALL_STATUS)
    if status not in FINAL_STATUSES:
        return NO_CONTENT
    services = services_of(current_app)
    leg = twilio_form().get(tp.CALL_SID, "")
    Supervisors(services.redis).left(sid, staff_id)
    left = Event(EventKind.SUPERVISOR_LEFT, f"supervisor-left:{staff_id}:{leg or status}",
                 clock.now_utc(), {"staff_id": staff_id, "status": status,
                                   "answered": status == CALL_STATUS_COMPLETED})
    services.event_sink.emit(Batch.of(sid, left))
    return NO_CONTENT
