"""The agent console page, and the access token that makes it the agent's phone."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, jsonify, render_template

from callflow.call_state import CallState
from callflow.ending import INCIDENT_MENU, WRAP_UP_REASONS, EndReason, EndRefusal
from callflow.register import CATEGORY_LABELS, Category
from callflow.roles import Capability
from console.auth import current_staff, requires
from console.voice import VoiceNotConfigured, voice_token
from usecases.bootstrap import services_of

pages = Blueprint("pages", __name__, template_folder="templates")


@pages.get("/console")
@requires(Capability.TAKE_CALLS)
def console() -> str:
    """The agent's console: availability, the live call, warn, end, report, propose."""
    settings = services_of(current_app).settings
    # In the simulator the phone is the console itself; with Twilio it is the Voice SDK.
    phone = "twilio" if settings.twilio_configured else (
        "simulator" if settings.simulator_enabled else "none")
    return render_template(
        "console.html",
        phone=phone,
        # The reasons and their labels come from the core, so the page never spells them.
        incident_categories=[(r.value, r.label) for r in INCIDENT_MENU],
        wrap_up_reasons=[(r.value, r.label) for r in WRAP_UP_REASONS],
        threat_reason=EndReason.THREAT_OR_VIOLENCE.value,
        not_warned=EndRefusal.NOT_WARNED.value,
        call_states=json.dumps({state.name: state.value for state in CallState}),
        register_categories=[(c.value, CATEGORY_LABELS[c]) for c in Category],
        warning_text=settings.warning_text,
    )


@pages.get("/console/voice-token")
@requires(Capability.TAKE_CALLS)
def token() -> Response:
    """A short-lived Twilio access token (VoiceGrant) for the agent's client identity."""
    settings = services_of(current_app).settings
    staff = current_staff()
    if not settings.twilio_configured or staff is None:
        return _error(404, "Twilio is not configured; calls ring in the phone simulator")
    if not staff.client_identity:
        return _error(409, "you have no client identity, so calls ring your phone instead")
    try:
        issued = voice_token(settings, staff.client_identity)
    except VoiceNotConfigured as missing:
        return _error(503, f"the browser phone is not set up: {missing}")
    response = jsonify(identity=issued.identity, token=issued.token, ttl=issued.ttl_seconds)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response
