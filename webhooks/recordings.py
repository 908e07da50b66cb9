"""Twilio's recording status callback for a recorded call's conference (issue 14 item 7)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import BadRequest

from callflow.call_state import CALL_SID_PATTERN
from callflow.recording import recording_status
from config import clock
from store.recordings import RecordingNews
from store.voice_urls import VOICE_PREFIX
from usecases.bootstrap import services_of
from usecases.recordings import recording_reported
from webhooks import twilio_params as tp
from webhooks.signature import twilio_form, twilio_signed
from webhooks.twiml import CALL_RECORDING_PATH

recordings = Blueprint("recordings", __name__, url_prefix=VOICE_PREFIX)

RECORDING_SID_PATTERN = re.compile(r"^RE[0-9a-fA-F]{32}$")
CONFERENCE_SID_PATTERN = re.compile(r"^CF[0-9a-fA-F]{32}$")
DURATION_PATTERN = re.compile(r"^\d{1,7}$")
TWILIO_MEDIA_URL = re.compile(r"^https://api\.twilio\.com/[\w/.-]{1,500}$")


@recordings.post(CALL_RECORDING_PATH)
@twilio_signed
def call_recording() -> tuple[str, int] | Response:
    """A recording of the call's conference is ready, missing or failed: keep it, log it."""
    form = twilio_form()
    problems = []
    sid = request.args.get("call", "")
    if not CALL_SID_PATTERN.match(sid):
        problems.append("the query parameter call is missing or not a CallSid")
    recording_sid = form.get(tp.RECORDING_SID, "")
    if not RECORDING_SID_PATTERN.match(recording_sid):
        problems.append(f"parameter {tp.RECORDING_SID} is missing or malformed")
    status = recording_status(form.get(tp.RECORDING_STATUS, ""))
    if status is None:
        problems.append(f"parameter {tp.RECORDING_STATUS} is missing or not a recording status")
    if problems:
        raise BadRequest("; ".join(problems))
    conference_sid = form.get(tp.CONFERENCE_SID, "")
    duration = form.get(tp.RECORDING_DURATION, "")
    url = form.get(tp.RECORDING_URL, "")
    recording_reported(services_of(current_app), RecordingNews(
        call_sid=sid, recording_sid=recording_sid,
        conference_sid=conference_sid if CONFERENCE_SID_PATTERN.match(conference_sid) else None,
        status=status.value if status else "",
        duration_seconds=int(duration) if DURATION_PATTERN.match(duration) else None,
        recording_url=url if TWILIO_MEDIA_URL.match(url) else None, at=clock.now_utc()))
    return "", 204
