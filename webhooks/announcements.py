"""The statements the console plays to a caller: the warning and the closing (policy 4.5)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from usecases.bootstrap import services_of
from webhooks import twiml
from webhooks.signature import twilio_signed

announcements = Blueprint("announcements", __name__, url_prefix="/twilio/voice/announce")

WARNING_PATH = "/twilio/voice/announce/warning"
CLOSING_PATH = "/twilio/voice/announce/closing"


@announcements.post("/warning")
@twilio_signed
def warning() -> Response:
    """The warning, announced to the caller alone while the agent stays on the line."""
    return twiml.respond_text(twiml.say_only([services_of(current_app).settings.warning_text]))


@announcements.post("/closing")
@twilio_signed
def closing() -> Response:
    """The closing statement; the caller's leg is redirected here, so the call ends after it."""
    return twiml.respond_text(twiml.say_only([services_of(current_app).settings.closing_text]))
