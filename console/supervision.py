"""Live supervision: "I need help", the supervisors' alerts, listen / coach / barge, live calls.

Views parse, call usecases.supervision, and answer; every route names the capability it needs
(agents may ask for help but never listen in; see callflow/roles.py).
"""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, render_template, request

from callflow.roles import Capability
from callflow.supervision import (
    HELP_SHORTCUT,
    HELP_SHORTCUT_TEXT,
    MODE_LABELS,
    SupervisionMode,
)
from console.api import REFUSAL_STATUS
from console.auth import authenticated_by, current_staff, requires
from store.models import Staff
from store.twilio_rest import TwilioRefused, TwilioUnavailable
from usecases import supervision
from usecases.bootstrap import Services, services_of
from usecases.calls import Actor, CallContext, CallRefused, acting_on, find_call
from usecases.idempotency import Outcome, RepeatRefused

supervision_pages = Blueprint("supervision", __name__, template_folder="templates")

MODES = tuple(mode.value for mode in SupervisionMode)


class _Invalid(Exception):
    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


def _json(status: int, **body: Any) -> tuple[Response, int]:
    return jsonify(body), status


@supervision_pages.errorhandler(_Invalid)
def _invalid(error: _Invalid) -> tuple[Response, int]:
    return _json(422, error=error.message, field=error.field)


@supervision_pages.errorhandler(CallRefused)
def _call_refused(error: CallRefused) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": error.message}
    if error.field:
        body["field"] = error.field
    return _json(REFUSAL_STATUS[error.refusal], **body)


@supervision_pages.errorhandler(RepeatRefused)
def _repeat_refused(error: RepeatRefused) -> tuple[Response, int]:
    return _json(409, error=error.message)


@supervision_pages.errorhandler(TwilioRefused)
def _twilio_refused(error: TwilioRefused) -> tuple[Response, int]:
    return _json(502, error=f"Twilio refused: {error.message}", twilio_code=error.code)


@supervision_pages.errorhandler(TwilioUnavailable)
def _twilio_unavailable(error: TwilioUnavailable) -> tuple[Response, int]:
    return _json(503, error="Twilio could not be reached; nothing was done, try again")


@supervision_pages.errorhandler(redis.RedisError)
def _redis_down(error: redis.RedisError) -> tuple[Response, int]:
    return _json(503, error="the call store is unavailable; try again in a moment")


def _services() -> Services:
    return services_of(current_app)


def _actor() -> Actor:
    staff = current_staff()
    assert staff is not None  # the access rules answer 401 before a view runs
    return Actor(staff, authenticated_by())


def _call(actor: Actor, sid: str) -> CallContext:
    # Supervisors act on any call; the use case checks the asker is the one on it.
    return acting_on(_services(), actor, sid)


def _mode() -> SupervisionMode:
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict):
        raise _Invalid("send a JSON object", "body")
    value = body.get("mode")
    if value not in MODES:
        named = ", ".join(f"{mode.value} ({MODE_LABELS[mode].lower()})"
                          for mode in SupervisionMode)
        raise _Invalid(f"choose how to be on the call (mode): one of {named}", "mode")
    return SupervisionMode(value)


def _answer(outcome: Outcome) -> Response:
    response = jsonify(outcome.result)
    if outcome.replayed:
        response.headers["Idempotent-Replay"] = "true"
    return response


# --- "I need help" -----------------------------------------------------------------------------


@supervision_pages.post("/api/calls/<sid>/help")
@requires(Capability.REQUEST_HELP)
def ask_for_help(sid: str) -> Response:
    """Alert every available supervisor: the asker needs help on the call they are on."""
    actor = _actor()
    return jsonify(supervision.request_help(_services(), actor, _call(actor, sid)))


@supervision_pages.get("/api/calls/<sid>/help")
@requires(Capability.REQUEST_HELP)
def help_answered(sid: str) -> Response:
    """Where help asked for on the call stands: who answered, if anyone."""
    actor = _actor()
    return jsonify(supervision.help_status(_services(), _call(actor, sid)))


@supervision_pages.get("/api/help/alerts")
@requires(Capability.LISTEN_IN)
def help_alerts() -> Response:
    """The help alerts waiting for the signed-in supervisor (none while they are on a call)."""
    staff: Staff = _actor().staff
    return jsonify(alerts=supervision.open_alerts(_services(), staff))


@supervision_pages.post("/api/calls/<sid>/help/answer")
@requires(Capability.LISTEN_IN)
def answer_help(sid: str) -> Response:
    """Answer a help alert; the first supervisor to answer is logged on the call."""
    actor = _actor()
    return jsonify(supervision.answer_help(_services(), actor, find_call(_services(), sid)))


# --- listen, coach, barge ----------------------------------------------------------------------


@supervision_pages.post("/api/calls/<sid>/supervision")
@requires(Capability.LISTEN_IN)
def join_call(sid: str) -> Response:
    """Ring the supervisor and put them on the call: listen, coach or barge."""
    actor = _actor()
    mode = _mode()
    return _answer(supervision.join(_services(), actor, _call(actor, sid), mode))


@supervision_pages.put("/api/calls/<sid>/supervision")
@requires(Capability.LISTEN_IN)
def switch_mode(sid: str) -> Response:
    """Switch how the supervisor is on the call."""
    actor = _actor()
    mode = _mode()
    return jsonify(supervision.switch(_services(), actor, _call(actor, sid), mode))


@supervision_pages.get("/api/calls/live")
@requires(Capability.LISTEN_IN)
def live_calls() -> Response:
    """Every call in progress, with its state and flags."""
    return jsonify(calls=supervision.live_calls(_services(), _actor().staff))


@supervision_pages.get("/supervision/live")
@requires(Capability.LISTEN_IN)
def live_page() -> str:
    """The live-calls page: every call in progress; listen, coach or join any of them."""
    return render_template("supervision/live.html",
                           modes=[(mode.value, MODE_LABELS[mode]) for mode in SupervisionMode])


@supervision_pages.app_context_processor
def help_context() -> dict[str, Any]:
    """What the console page needs for the help button and the supervisors' alerts."""
    return {"help_shortcut": HELP_SHORTCUT, "help_shortcut_text": HELP_SHORTCUT_TEXT,
            "supervision_modes": [(mode.value, MODE_LABELS[mode]) for mode in SupervisionMode]}

