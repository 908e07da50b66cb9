"""The statements the console plays to a caller: the warning and the closing (policy 4.5)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from callflow.call_limits import time_closing_words, time_warning_words
from store.voice_urls import VOICE_PREFIX
from usecases.bootstrap import services_of
from webhooks import twiml
from webhooks.signature import twilio_signed

announcements = Blueprint("announcements", __name__, url_prefix=f"{VOICE_PREFIX}/announce")

# Below VOICE_PREFIX, as store.voice_urls.voice_url takes them.
WARNING = "/announce/warning"
CLOSING = "/announce/closing"
WARNING_PATH = VOICE_PREFIX + WARNING


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


@announcements.post("/time-warning")
@twilio_signed
def time_warning() -> Response:
    """Two minutes before the agreed call length (policy 4.6), to the caller alone."""
    minutes = request.args.get("minutes", "")
    return twiml.respond_text(twiml.say_only(
        time_warning_words(int(minutes) if minutes.isdigit() else None)))


@announcements.post("/time-closing")
@twilio_signed
def time_closing() -> Response:
    """At the agreed call length: the caller's leg is redirected here, so the call ends after."""
    written = services_of(current_app).settings.written_contact
    return twiml.respond_text(twiml.say_only(time_closing_words(written)))
