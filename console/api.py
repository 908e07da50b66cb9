"""The console's JSON API: the live call, availability, and warn / end / report / propose.

Each action is checked on the server: an agent acts only on the call they are on, supervisors
and managers on any call. Twilio is called first and the action recorded only once Twilio has
accepted it, so a refusal leaves nothing half-recorded; repeating a request does no harm.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from callflow import words
from callflow.announcement import WARNING_STATE_WORDS
from callflow.call_state import CallState
from callflow.ending import END_REASONS, INCIDENT_CATEGORIES, WRAP_UP_REASONS, EndReason
from callflow.phone import display
from callflow.register import CATEGORY_LABELS, Category
from callflow.roles import Capability, may
from config import clock
from console.auth import (
    authenticated_by,
    current_session,
    current_staff,
    login_required,
    public,
    requires,
)
from console.openapi import openapi_document
from store.agent_pool import AgentPool, Availability, Recovery
from store.call_limits import limits_of
from store.live_call import LiveCall, read_live
from store.models import RegisterEntry, Staff
from store.register import RegisterStore
from store.twilio_rest import TwilioRefused, TwilioUnavailable
from store.voice_urls import voice_url
from store.waiting_callers import WaitingCallers
from usecases import call_reports, end_call
from usecases.adjustments import screen_pop
from usecases.bootstrap import Services, services_of
from usecases.calls import (
    CALL_SID_PATTERN,
    CONFERENCE_SID_PATTERN,
    Actor,
    CallContext,
    CallRefused,
    Refusal,
    abuse_remembered,
    acting_on,
)
from usecases.idempotency import Outcome, RepeatRefused
from webhooks.announcements import CLOSING, WARNING

api = Blueprint("api", __name__, url_prefix="/api")

MAX_NOTE_CHARS = 2000
MAX_TEXT_CHARS = 5000
MAX_REFERENCE_CHARS = 80
MAX_CUSTOMER_REF_CHARS = 64
REPLAY_HEADER = "Idempotent-Replay"
# How each refusal from the use cases is answered.
REFUSAL_STATUS = {Refusal.NOT_FOUND: 404, Refusal.NOT_ALLOWED: 403, Refusal.CONFLICT: 409,
                  Refusal.INVALID: 422}


class ApiError(Exception):
    """An answer other than 200, with a message for the agent (and the field at fault)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@api.errorhandler(ApiError)
def _api_error(error: ApiError) -> tuple[Response, int]:
    body: dict[str, str] = {"error": error.message}
    if error.field:
        body["field"] = error.field
    return jsonify(body), error.status


@api.errorhandler(CallRefused)
def _call_refused(error: CallRefused) -> tuple[Response, int]:
    return _api_error(ApiError(REFUSAL_STATUS[error.refusal], error.message, error.field))


@api.errorhandler(RepeatRefused)
def _repeat_refused(error: RepeatRefused) -> tuple[Response, int]:
    return _api_error(ApiError(409, error.message))


@api.errorhandler(TwilioRefused)
def _twilio_refused(error: TwilioRefused) -> tuple[Response, int]:
    return jsonify(error=f"Twilio refused: {error.message}", twilio_code=error.code), 502


@api.errorhandler(TwilioUnavailable)
def _twilio_unavailable(error: TwilioUnavailable) -> tuple[Response, int]:
    return jsonify(error="Twilio could not be reached; nothing was done, try again"), 503


@api.errorhandler(redis.RedisError)
def _redis_down(error: redis.RedisError) -> tuple[Response, int]:
    return jsonify(error="the call store is unavailable; try again in a moment"), 503


def _services() -> Services:
    return services_of(current_app)


def _staff() -> Staff:
    staff = current_staff()
    if staff is None:  # the access rules answer 401 before a view runs
        raise ApiError(401, "sign in first")
    return staff


def _json_body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(422, "send a JSON object", "body")
    return body


def _text_field(body: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(422, f"{_field(name)} must be text", name)
    value = value.strip()
    if required and not value:
        raise ApiError(422, f"give {_field(name)}", name)
    if len(value) > limit:
        raise ApiError(422, f"{_field(name)} must be {limit} characters or fewer", name)
    return value


def _field(name: str) -> str:
    return words.label(name, words.API_FIELD_LABELS)


def _answer(outcome: Outcome) -> Response:
    response = jsonify(outcome.result)
    if outcome.replayed:
        response.headers[REPLAY_HEADER] = "true"
    return response


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in choices:
        named = ", ".join(words.reason(c) for c in choices)
        raise ApiError(422, f"choose {_field(name)}: one of {named}", name)
    return value


# --- the live call -----------------------------------------------------------------------------


def _person_of_interest(entry: RegisterEntry, staff: Staff) -> dict[str, Any]:
    """What the agent needs about a restriction (5.2), and nothing more personal."""
    categories = []
    for code in entry.categories:
        try:
            label = CATEGORY_LABELS[Category(code)]
        except ValueError:
            label = code
        categories.append({"code": code, "label": label})
    flag: dict[str, Any] = {
        "flag": True,
        "categories": categories,
        "arrangements": {
            "call_windows": entry.call_windows,
            "designated_contact": (
                entry.designated_contact.name if entry.designated_contact else None
            ),
            "written_only": entry.written_only,
            "visits_by_appointment": entry.visits_by_appointment,
            "call_limits": limits_of(entry).describe(),  # policy 4.6, e.g. "at most 1 call a day"
        },
        # Policy 4.7: do not reopen these unless the caller brings new information.
        "closed_issues": [
            {"reference": issue.get("reference", ""), "summary": issue.get("summary", "")}
            for issue in entry.closed_issues
        ],
        "staff_notes": entry.staff_notes,
    }
    if may(staff.role, Capability.READ_RESTRICTION_REASONS):
        # The reason can carry allegations; agents act on the categories and arrangements.
        flag["reason"] = entry.reason
    return flag


def _clock_text(iso: str | None) -> str | None:
    """When a live call began, in the centre's time as people read it (3:59pm)."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return words.clock(moment.astimezone(_services().settings.tz))


def _describe(sid: str, live: LiveCall, staff: Staff) -> dict[str, Any]:
    """A live call as the console shows it."""
    withheld = bool(live.withheld)
    described: dict[str, Any] = {
        "call_sid": sid,
        "number": "withheld" if withheld else (live.number or "unknown"),
        "withheld": withheld,
        "state": live.state.value if live.state else "unknown",
        "outcome": live.outcome or None,
        "started_at": live.started or None,
        # Preformatted, so the console shows times and numbers as the workspace does.
        "started_at_text": _clock_text(live.started),
        "number_text": "Withheld number" if withheld else (
            display(live.number) if live.number else "Unknown number"),
        "staff_id": live.staff_id,
        "connected": bool(CONFERENCE_SID_PATTERN.match(live.conference_sid or "")),
        "warned": bool(live.warned),
        "warnings": live.warnings or 0,
        **_warning(live),
        "ended_by_agent": bool(live.ended_by_agent),
        "register_check_failed": bool(live.lookup_failed),
        "customer": None,
        "person_of_interest": None,
    }
    described["last_ended_for_abuse"] = None if withheld else _abuse_warning(sid, live)
    if live.entry_id is not None:
        with _services().sessions() as db:
            entry = RegisterStore(db).get_by_id(live.entry_id)
            if entry is not None and entry.anonymised_at is None:
                described["customer"] = {"name": entry.name, "reference": entry.customer_ref}
                described["person_of_interest"] = _person_of_interest(entry, staff)
                described["person_of_interest"].update(screen_pop(entry, live.number))
    return described


def _warning(live: LiveCall) -> dict[str, Any]:
    """Where the last warning stands (issue 14): its state and the words the console shows."""
    state = end_call.warning_state(_services(), live)
    return {"warning_state": state.value if state else None,
            "warning_state_text": WARNING_STATE_WORDS[state] if state else None}


def _abuse_warning(sid: str, live: LiveCall) -> dict[str, Any] | None:
    """This number's last call, if it was ended for abuse or threats recently (policy 5.2)."""
    found = abuse_remembered(_services(), live.number or "", sid, clock.now_utc())
    if found is None:
        return None
    return {"when": words.local_moment(found.ended_at, _services().settings.tz),
            "reason": found.reason.label, "reason_text": words.reason(found.reason.value),
            "reason_code": found.reason.value, "call_sid": found.call_sid}


@api.get("/calls/current")
@requires(Capability.END_CALLS)
def current_call() -> Response:
    """The signed-in member of staff's live call (supervisors: any call, with ?call=)."""
    staff = _staff()
    pool = AgentPool(_services().redis)
    wanted = request.args.get("call", "")
    if wanted:
        if not CALL_SID_PATTERN.match(wanted):
            raise ApiError(404, "no such call")
        if (not may(staff.role, Capability.SUPERVISE_CALLS)
                and pool.current_call(staff.id) != wanted):
            raise ApiError(403, "only supervisors may view other staff's calls")
        sid: str | None = wanted
    else:
        sid = pool.current_call(staff.id)
    if not sid:
        return _no_call(pool, staff)
    live = read_live(_services().redis, sid)
    if live == LiveCall():
        if wanted:
            raise ApiError(404, "no such live call")
        return _no_call(pool, staff)
    return jsonify(call=_describe(sid, live, staff))


def _no_call(pool: AgentPool, staff: Staff) -> Response:
    """No live call; and the last call meant for them that went to the fallback or voicemail."""
    noted = pool.passed_on(staff.id)
    if noted is None:
        return jsonify(call=None)
    return jsonify(call=None, passed_on={"call_sid": noted[0], "went_to": noted[1]})


# --- the member of staff -----------------------------------------------------------------------


def _me(staff: Staff) -> dict[str, Any]:
    pool = AgentPool(_services().redis)
    me: dict[str, Any] = {
        "staff": {"id": staff.id, "email": staff.email, "name": staff.name, "role": staff.role,
                  "client_identity": staff.client_identity},
        "availability": pool.availability(staff.id).value,
        "current_call": pool.current_call(staff.id),
        "wrap_up": None,
    }
    owed = pool.wrap_up_owed(staff.id)
    if owed:
        # The call they ended without its reason: no calls for them until it is given.
        me["wrap_up"] = {"call_sid": owed}
    me["recovery"] = _recovery(pool, staff.id)
    # Read after settling: a recovery found over has made them available.
    me["availability"] = pool.availability(staff.id).value
    live = current_session()
    if live is not None:
        # Same-origin only (no CORS), so a script on another site cannot read it.
        me["csrf_token"] = live.csrf
    return me


def _recovery(pool: AgentPool, staff_id: int) -> dict[str, Any] | None:
    """Their time to recover after an abusive call, if it is still running."""
    recovery = pool.recovery(staff_id, time.time())
    if recovery is None:
        return None
    return {**_time_left(recovery), "early_return": _services().settings.recovery_early_return}


def _time_left(recovery: Recovery) -> dict[str, Any]:
    """A recovery's end and time left, as the console and people read them."""
    ends = datetime.fromtimestamp(recovery.until, UTC)
    # Whole seconds, rounded up: the countdown reaches 0 only when the recovery is over.
    seconds = math.ceil(recovery.seconds_left)
    return {"until": ends.isoformat(),
            "until_text": words.clock(ends.astimezone(_services().settings.tz)),
            "seconds_left": seconds, "time_left_text": words.duration(seconds)}


@api.get("/me")
@login_required
def me() -> Response:
    """Who is signed in, their availability and current call."""
    return jsonify(_me(_staff()))


@api.put("/me/availability")
@requires(Capability.TAKE_CALLS)
def set_availability() -> Response:
    """Available or away; busy is set by the call path only."""
    staff = _staff()
    body = _json_body()
    wanted = body.get("availability")
    if wanted == Availability.BUSY.value:
        raise ApiError(422, "you cannot choose busy: calls set it; choose available or away",
                       "availability")
    choice = _choice(body, "availability", (Availability.AVAILABLE.value,
                                            Availability.AWAY.value))
    s = _services()
    pool = AgentPool(s.redis)
    if choice == Availability.AVAILABLE.value and pool.availability(staff.id) is Availability.BUSY:
        on_call = pool.current_call(staff.id)
        if on_call and read_live(s.redis, on_call).state not in (None, CallState.ENDED):
            # Available now would let the call path offer a second call to someone on one.
            raise ApiError(409, "you are on a call; you become available when it ends")
    early = s.settings.recovery_early_return
    if not pool.set_availability(staff.id, Availability(choice), time.time(), early_return=early):
        if pool.wrap_up_owed(staff.id):
            raise ApiError(409, "give the reason for ending your last call first; then you can "
                                "take calls again")
        recovery = _recovery(pool, staff.id)
        until = f" at {recovery['until_text']}" if recovery else " soon"
        raise ApiError(409, f"you are taking time to recover after an abusive call; you can "
                            f"take calls again{until}")
    if choice == Availability.AVAILABLE.value:
        # The longest-waiting caller is rung for them now, not at the caller's next retry.
        WaitingCallers(s.redis).request_offer(s.queue, staff.id)
    return jsonify(_me(staff))


@api.get("/staff/recovering")
@requires(Capability.SUPERVISE_CALLS)
def recovering_staff() -> Response:
    """Who is taking time to recover after an abusive call, and until when (supervisors)."""
    s = _services()
    recovering = AgentPool(s.redis).recovering(time.time())
    names: dict[int, str] = {}
    if recovering:
        with s.sessions() as db:
            names = {member.id: member.name for member in db.scalars(
                select(Staff).where(Staff.id.in_(list(recovering))))}
    found = [{"staff_id": staff_id, "name": names.get(staff_id, "Unknown member of staff"),
              **_time_left(recovery)}
             for staff_id, recovery in sorted(recovering.items(),
                                              key=lambda item: item[1].seconds_left)]
    return jsonify(recovering=found)


# --- actions on a call -------------------------------------------------------------------------


def _acting_on(sid: str) -> tuple[Actor, CallContext]:
    """Who is acting and the call they act on, once they are known to be allowed to."""
    actor = Actor(_staff(), authenticated_by())
    return actor, acting_on(_services(), actor, sid)


def _public_url(path: str, sid: str) -> str:
    return voice_url(_services().settings.public_base_url, path, call=sid)


@api.post("/calls/<sid>/warning")
@requires(Capability.END_CALLS)
def give_warning(sid: str) -> Response:
    """Play the warning to the caller alone (policy 4.5) and log who gave it."""
    actor, call = _acting_on(sid)
    return _answer(end_call.give_warning(_services(), actor, call,
                                         _public_url(WARNING, sid)))


@api.post("/calls/<sid>/end")
@requires(Capability.END_CALLS)
def end(sid: str) -> Response:
    """End the call: closing statement first, unless threats or violence (4.3).

    Without a reason (one click once warned) the reason is owed as wrap-up: the agent on the
    call takes no calls until it is given with POST /calls/<sid>/wrap-up.
    """
    actor, call = _acting_on(sid)
    body = _json_body()
    reason = None if body.get("reason") is None else EndReason(
        _choice(body, "reason", END_REASONS))
    note = _text_field(body, "note", MAX_NOTE_CHARS)
    return _answer(end_call.end(_services(), actor, call, reason, note,
                                _public_url(CLOSING, sid)))


@api.post("/calls/<sid>/wrap-up")
@requires(Capability.END_CALLS)
def wrap_up(sid: str) -> Response:
    """Give the reason for a call ended in one click; its agent may then take calls again."""
    actor, call = _acting_on(sid)
    body = _json_body()
    reason = EndReason(_choice(body, "reason", WRAP_UP_REASONS))
    note = _text_field(body, "note", MAX_NOTE_CHARS)
    return _answer(end_call.wrap_up(_services(), actor, call, reason, note))


@api.post("/calls/<sid>/incident")
@requires(Capability.END_CALLS)
def report_incident(sid: str) -> Response:
    """Record an incident against the call for a manager's follow-up (policy 4.3)."""
    actor, call = _acting_on(sid)
    body = _json_body()
    category = EndReason(_choice(body, "category", INCIDENT_CATEGORIES))
    police_reference = _text_field(body, "police_reference", MAX_REFERENCE_CHARS)
    notes = _text_field(body, "notes", MAX_TEXT_CHARS)
    return _answer(call_reports.report_incident(_services(), actor, call, category,
                                                police_reference, notes))


@api.post("/calls/<sid>/proposal")
@requires(Capability.END_CALLS)
def propose(sid: str) -> Response:
    """Propose the caller for the register; only a manager can decide (policy 5.2)."""
    actor, call = _acting_on(sid)
    body = _json_body()
    reason = _text_field(body, "reason", MAX_TEXT_CHARS, required=True)
    categories = body.get("categories")
    allowed = tuple(c.value for c in Category)
    if (not isinstance(categories, list) or not categories
            or any(c not in allowed for c in categories)):
        named = ", ".join(words.reason(c) for c in allowed)
        raise ApiError(422, f"choose one or more kinds of behaviour: {named}", "categories")
    customer_ref = _text_field(body, "customer_ref", MAX_CUSTOMER_REF_CHARS)
    return _answer(call_reports.propose(_services(), actor, call, reason,
                                        [Category(c) for c in categories], customer_ref))


@api.get("/openapi.json")
@public
def openapi() -> Response:
    """This API, described as OpenAPI 3."""
    return jsonify(openapi_document(_services().settings.public_base_url))
