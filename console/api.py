"""The console's JSON API: the live call, availability, and warn / end / report / propose.

Each action is checked on the server: an agent acts only on the call they are on, supervisors
and managers on any call. Twilio is called first and the action recorded only once Twilio has
accepted it, so a refusal leaves nothing half-recorded; repeating a request does no harm.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from callflow import words
from callflow.decision import Event
from callflow.phone import display
from callflow.register import CATEGORY_LABELS, Category
from config import clock
from console.auth import (
    SUPERVISORS,
    authenticated_by,
    current_session,
    current_staff,
    login_required,
    public,
    roles_required,
)
from console.openapi import openapi_document
from store.agent_pool import AgentPool, Availability
from store.call_events import LIVE_TTL_SECONDS, Batch, live_call
from store.db import transaction
from store.models import ROLES, Call, Incident, Proposal, RegisterEntry, Staff
from store.register import RegisterStore
from store.twilio_rest import (
    TwilioRefused,
    TwilioUnavailable,
    announce_to_participant,
    end_call,
    redirect_call,
)
from usecases.bootstrap import Services, services_of
from webhooks.announcements import CLOSING_PATH, WARNING_PATH

api = Blueprint("api", __name__, url_prefix="/api")

CALL_SID_PATTERN = re.compile(r"^CA[0-9a-fA-F]{32}$")
CONFERENCE_SID_PATTERN = re.compile(r"^CF[0-9a-fA-F]{32}$")
THREAT = "threat_or_violence"
# Policy section 3's categories, and 4.3's threats or violence (which end a call at once).
END_REASONS = (*(c.value for c in Category), THREAT)
INCIDENT_CATEGORIES = END_REASONS
# A call ended in one click (after a warning) is given one of section 3's reasons as wrap-up.
WRAP_UP_REASONS = tuple(c.value for c in Category)
CALL_TAKERS = ("agent", "supervisor")
MAX_NOTE_CHARS = 2000
MAX_TEXT_CHARS = 5000
MAX_REFERENCE_CHARS = 80
MAX_CUSTOMER_REF_CHARS = 64

ACTION_KEY = "callflow:console:{action}:{sid}"
WARNINGS_KEY = "callflow:console:warnings:{sid}"
PENDING = b"pending"
PENDING_TTL_SECONDS = 30
WAIT_FOR_PENDING_SECONDS = 8.0
# A second click within this window is the same warning, not another one.
WARNING_REPEAT_SECONDS = 10
# Identical incident or proposal reports within this window are one report.
REPORT_REPEAT_SECONDS = 600
REPLAY_HEADER = "Idempotent-Replay"

# Twilio error codes meaning the call or participant is already gone.
TWILIO_CALL_NOT_IN_PROGRESS = 21220
TWILIO_NOT_FOUND = 20404


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


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in choices:
        named = ", ".join(words.reason(c) for c in choices)
        raise ApiError(422, f"choose {_field(name)}: one of {named}", name)
    return value


def _actor(staff: Staff) -> dict[str, object]:
    """Who did it, for the call log's audit trail."""
    return {"staff_id": staff.id, "staff_email": staff.email, "via": authenticated_by()}


# --- the call an action is about ------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    """A call as the API sees it: its live state, or its call log row once live state is gone."""

    sid: str
    live: dict[str, str]
    row: Call | None

    @property
    def staff_id(self) -> int | None:
        """The member of staff connected to the call."""
        value = self.live.get("staff_id", "")
        if value.isdigit():
            return int(value)
        return self.row.agent_id if self.row is not None else None

    @property
    def ended(self) -> bool:
        """The call is over (hung up, or ended by an agent)."""
        if self.live:
            return self.live.get("state") == "ended" or self.live.get("ended_by_agent") == "1"
        return True  # only a call log row is left: the call finished long ago

    @property
    def warned(self) -> bool:
        """A warning was played on this call."""
        return self.live.get("warned") == "1" or bool(self.row and self.row.warned)


def _call(sid: str) -> CallContext:
    """The call, or 404 when neither live state nor a call log row knows it."""
    if not CALL_SID_PATTERN.match(sid):
        raise ApiError(404, "no such call")
    live = live_call(_services().redis, sid)
    row = None
    if not live or not live.get("staff_id", "").isdigit():
        with _services().sessions() as db:
            row = db.scalar(select(Call).where(Call.call_sid == sid))
    if not live and row is None:
        raise ApiError(404, "no such call")
    return CallContext(sid, live, row)


def _may_act(staff: Staff, call: CallContext) -> None:
    """An agent acts only on the call they are on; supervisors and managers on any call."""
    if staff.role in SUPERVISORS:
        return
    if call.staff_id != staff.id:
        raise ApiError(403, "you are not on this call")


def _acting_on(sid: str) -> tuple[Staff, CallContext]:
    """Who is acting and the call they act on, once they are known to be allowed to."""
    staff = _staff()
    call = _call(sid)
    _may_act(staff, call)
    return staff, call


def _public_url(path: str, sid: str) -> str:
    return f"{_services().settings.public_base_url}{path}?{urlencode({'call': sid})}"


def _twilio_gone(refused: TwilioRefused) -> ApiError | None:
    """Twilio saying the call has already gone is a 409, not a fault."""
    if refused.code == TWILIO_CALL_NOT_IN_PROGRESS:
        return ApiError(409, "call already ended")
    if refused.code == TWILIO_NOT_FOUND:
        return ApiError(409, "the caller is no longer on the call")
    return None


# --- doing something once ----------------------------------------------------------------------


def _stored_result(key: str) -> dict[str, Any] | None:
    raw = _services().redis.get(key)
    if raw is None or raw == PENDING:
        return None
    return json.loads(raw)


def _run_once(key: str, fingerprint: str, ttl: int, action: Callable[[], dict[str, Any]],
              conflict: str) -> tuple[dict[str, Any], bool]:
    """Run `action` once per key; a repeat with the same fingerprint gets the first result.

    Returns (result, replayed). A repeat with another fingerprint is a 409 `conflict`.
    """
    client = _services().redis
    deadline = time.monotonic() + WAIT_FOR_PENDING_SECONDS
    while True:
        if client.set(key, PENDING, nx=True, ex=PENDING_TTL_SECONDS):
            try:
                result = action()
            except BaseException:
                client.delete(key)  # nothing happened: let a retry try again
                raise
            client.set(key, json.dumps({"fingerprint": fingerprint, "result": result}), ex=ttl)
            return result, False
        stored = _stored_result(key)
        if stored is not None:
            if stored["fingerprint"] != fingerprint:
                raise ApiError(409, conflict)
            return stored["result"], True
        if time.monotonic() > deadline:
            raise ApiError(409, "the same request is still being carried out")
        time.sleep(0.1)


def _answer(result: dict[str, Any], replayed: bool) -> Response:
    response = jsonify(result)
    if replayed:
        response.headers[REPLAY_HEADER] = "true"
    return response


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
        },
        # Policy 4.7: do not reopen these unless the caller brings new information.
        "closed_issues": [
            {"reference": issue.get("reference", ""), "summary": issue.get("summary", "")}
            for issue in entry.closed_issues
        ],
        "staff_notes": entry.staff_notes,
    }
    if staff.role in SUPERVISORS:
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


def _describe(sid: str, live: dict[str, str], staff: Staff) -> dict[str, Any]:
    """A live call as the console shows it."""
    withheld = live.get("withheld") == "1"
    staff_id = live.get("staff_id", "")
    warnings = live.get("warnings", "")
    described: dict[str, Any] = {
        "call_sid": sid,
        "number": "withheld" if withheld else (live.get("from") or "unknown"),
        "withheld": withheld,
        "state": live.get("state", "unknown"),
        "outcome": live.get("outcome") or None,
        "started_at": live.get("started") or None,
        # Preformatted, so the console shows times and numbers as the workspace does.
        "started_at_text": _clock_text(live.get("started")),
        "number_text": "Withheld number" if withheld else (
            display(live.get("from")) if live.get("from") else "Unknown number"),
        "staff_id": int(staff_id) if staff_id.isdigit() else None,
        "connected": bool(CONFERENCE_SID_PATTERN.match(live.get("conference_sid", ""))),
        "warned": live.get("warned") == "1",
        "warnings": int(warnings) if warnings.isdigit() else 0,
        "ended_by_agent": live.get("ended_by_agent") == "1",
        "register_check_failed": live.get("lookup_failed") == "1",
        "customer": None,
        "person_of_interest": None,
    }
    entry_id = live.get("entry_id", "")
    if entry_id.isdigit():
        with _services().sessions() as db:
            entry = RegisterStore(db).get_by_id(int(entry_id))
            if entry is not None and entry.anonymised_at is None:
                described["customer"] = {"name": entry.name, "reference": entry.customer_ref}
                described["person_of_interest"] = _person_of_interest(entry, staff)
    return described


@api.get("/calls/current")
@roles_required(*ROLES)
def current_call() -> Response:
    """The signed-in member of staff's live call (supervisors: any call, with ?call=)."""
    staff = _staff()
    pool = AgentPool(_services().redis)
    wanted = request.args.get("call", "")
    if wanted:
        if not CALL_SID_PATTERN.match(wanted):
            raise ApiError(404, "no such call")
        if staff.role not in SUPERVISORS and pool.current_call(staff.id) != wanted:
            raise ApiError(403, "only supervisors may view other staff's calls")
        sid: str | None = wanted
    else:
        sid = pool.current_call(staff.id)
    if not sid:
        return _no_call(pool, staff)
    live = live_call(_services().redis, sid)
    if not live:
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
    live = current_session()
    if live is not None:
        # Same-origin only (no CORS), so a script on another site cannot read it.
        me["csrf_token"] = live.csrf
    return me


@api.get("/me")
@login_required
def me() -> Response:
    """Who is signed in, their availability and current call."""
    return jsonify(_me(_staff()))


@api.put("/me/availability")
@roles_required(*CALL_TAKERS)
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
        if on_call and live_call(s.redis, on_call).get("state") not in (None, "ended"):
            # Available now would let the call path offer a second call to someone on one.
            raise ApiError(409, "you are on a call; you become available when it ends")
    if not pool.set_availability(staff.id, Availability(choice), time.time()):
        raise ApiError(409, "give the reason for ending your last call first; then you can "
                            "take calls again")
    return jsonify(_me(staff))


# --- actions on a call -------------------------------------------------------------------------


@api.post("/calls/<sid>/warning")
@roles_required(*ROLES)
def give_warning(sid: str) -> Response:
    """Play the warning to the caller alone (policy 4.5) and log who gave it."""
    staff, call = _acting_on(sid)
    key = ACTION_KEY.format(action="warning", sid=sid)
    stored = _stored_result(key)
    if stored is not None:
        return _answer(stored["result"], True)
    if call.ended:
        raise ApiError(409, "call already ended")
    conference_sid = call.live.get("conference_sid", "")
    if call.live.get("state") != "connected" or not CONFERENCE_SID_PATTERN.match(conference_sid):
        raise ApiError(409, "the caller is not connected to a member of staff yet")
    s = _services()

    def warn() -> dict[str, Any]:
        try:
            announce_to_participant(s.twilio, conference_sid, sid,
                                    announce_url=_public_url(WARNING_PATH, sid))
        except TwilioRefused as refused:
            raise _twilio_gone(refused) or refused from None
        count_key = WARNINGS_KEY.format(sid=sid)
        pipe = s.redis.pipeline(transaction=True)
        pipe.incr(count_key)
        pipe.expire(count_key, LIVE_TTL_SECONDS)
        number = int(pipe.execute()[0])
        now = clock.now_utc()
        detail = {**_actor(staff), "text": s.settings.warning_text}
        s.event_sink.emit(Batch(sid, (Event("warning", f"warning:{number}", now, detail),),
                                live={"warned": "1", "warnings": str(number)}))
        return {"call_sid": sid, "warned": True, "warning": number, "at": now.isoformat(),
                "text": s.settings.warning_text}

    result, replayed = _run_once(key, "warning", WARNING_REPEAT_SECONDS, warn,
                                 "a warning is already being played")
    return _answer(result, replayed)


@api.post("/calls/<sid>/end")
@roles_required(*ROLES)
def end(sid: str) -> Response:
    """End the call: closing statement first, unless threats or violence (4.3).

    Without a reason (one click once warned) the reason is owed as wrap-up: the agent on the
    call takes no calls until it is given with POST /calls/<sid>/wrap-up.
    """
    staff, call = _acting_on(sid)
    body = _json_body()
    reason = None if body.get("reason") is None else _choice(body, "reason", END_REASONS)
    note = _text_field(body, "note", MAX_NOTE_CHARS)
    key = ACTION_KEY.format(action="end", sid=sid)
    fingerprint = json.dumps([reason, note])
    stored = _stored_result(key)
    if stored is not None:
        if stored["fingerprint"] != fingerprint:
            raise ApiError(409, "call already ended")
        return _answer(stored["result"], True)
    if call.ended:
        raise ApiError(409, "call already ended")
    if reason != THREAT and not call.warned:
        # Policy 4.5: tell the caller their behaviour is unacceptable before ending the call.
        raise ApiError(409, "warn before ending")
    owed_by = call.staff_id if reason is None else None
    if reason is None and owed_by is None:
        raise ApiError(422, "give the reason now, as no member of staff is on the call to give "
                            "it afterwards", "reason")
    s = _services()

    def finish() -> dict[str, Any]:
        now = clock.now_utc()
        with transaction(s.sessions) as db:
            incident = None
            if reason == THREAT:
                # Policy 4.3: flag for a manager, who reports violence to the police.
                incident = Incident(call_sid=sid, reported_by_id=staff.id, reported_at=now,
                                    category=THREAT, notes=note, status="open")
                db.add(incident)
                db.flush()
            pool = AgentPool(s.redis)
            if owed_by is not None:
                # Before the caller leaves: the agent's leg ends with the conference, and the
                # pool must not hand them the next call in the moment before this lands.
                pool.begin_wrap_up(owed_by, sid)
            try:
                if reason == THREAT:
                    end_call(s.twilio, sid)
                else:
                    # Redirected out of the conference, the caller hears the closing statement
                    # and the call ends when it runs out. An announcement followed by an
                    # immediate hang-up would cut the statement off: announcements play
                    # asynchronously.
                    redirect_call(s.twilio, sid, _public_url(CLOSING_PATH, sid))
            except Exception as failed:
                if owed_by is not None:
                    pool.finish_wrap_up(owed_by, sid)  # the call goes on: nothing is owed
                if isinstance(failed, TwilioRefused):
                    raise _twilio_gone(failed) or failed from None
                raise
            detail: dict[str, object] = {**_actor(staff), "reason": reason, "note": note,
                                         "closing_statement": reason != THREAT,
                                         "wrap_up_owed": owed_by is not None}
            events = [Event("ended_by_agent", "ended_by_agent", now, detail)]
            if incident is not None:
                detail["incident_id"] = incident.id
                events.append(Event("incident", f"incident:{incident.id}", now,
                                    {**_actor(staff), "incident_id": incident.id,
                                     "category": THREAT}))
            s.event_sink.emit(Batch(sid, tuple(events),
                                    live={"ended_by_agent": "1", "end_reason": reason or ""}))
        return {"call_sid": sid, "ended": True, "reason": reason, "note": note,
                "closing_statement": reason != THREAT, "wrap_up_owed": owed_by is not None,
                "incident_id": incident.id if incident is not None else None,
                "at": now.isoformat()}

    result, replayed = _run_once(key, fingerprint, LIVE_TTL_SECONDS, finish,
                                 "call already ended")
    return _answer(result, replayed)


@api.post("/calls/<sid>/wrap-up")
@roles_required(*ROLES)
def wrap_up(sid: str) -> Response:
    """Give the reason for a call ended in one click; its agent may then take calls again."""
    staff, call = _acting_on(sid)
    body = _json_body()
    reason = _choice(body, "reason", WRAP_UP_REASONS)
    note = _text_field(body, "note", MAX_NOTE_CHARS)
    key = ACTION_KEY.format(action="wrap-up", sid=sid)
    fingerprint = json.dumps([reason, note])
    stored = _stored_result(key)
    if stored is not None:
        if stored["fingerprint"] != fingerprint:
            raise ApiError(409, "the reason for this call is already recorded")
        return _answer(stored["result"], True)
    s = _services()
    pool = AgentPool(s.redis)
    owed_by = call.staff_id
    if owed_by is None or pool.wrap_up_owed(owed_by) != sid:
        raise ApiError(409, "no reason is waiting for this call")

    def record() -> dict[str, Any]:
        now = clock.now_utc()
        s.event_sink.emit(Batch(sid, (Event("wrap_up", "wrap_up", now, {
            **_actor(staff), "reason": reason, "note": note}),)))
        pool.finish_wrap_up(owed_by, sid, time.time())
        return {"call_sid": sid, "reason": reason, "note": note, "at": now.isoformat()}

    result, replayed = _run_once(key, fingerprint, LIVE_TTL_SECONDS, record,
                                 "the reason for this call is already recorded")
    return _answer(result, replayed)


def _report_key(kind: str, sid: str, staff: Staff, fingerprint: str) -> str:
    digest = hashlib.sha256(f"{staff.id}:{fingerprint}".encode()).hexdigest()[:32]
    return ACTION_KEY.format(action=f"{kind}:{digest}", sid=sid)


@api.post("/calls/<sid>/incident")
@roles_required(*ROLES)
def report_incident(sid: str) -> Response:
    """Record an incident against the call for a manager's follow-up (policy 4.3)."""
    staff, call = _acting_on(sid)
    body = _json_body()
    category = _choice(body, "category", INCIDENT_CATEGORIES)
    police_reference = _text_field(body, "police_reference", MAX_REFERENCE_CHARS)
    notes = _text_field(body, "notes", MAX_TEXT_CHARS)
    fingerprint = json.dumps([category, police_reference, notes])
    s = _services()

    def record() -> dict[str, Any]:
        now = clock.now_utc()
        with transaction(s.sessions) as db:
            incident = Incident(call_sid=sid, reported_by_id=staff.id, reported_at=now,
                                category=category, police_reference=police_reference,
                                notes=notes, status="open")
            db.add(incident)
            db.flush()
            s.event_sink.emit(Batch(sid, (Event("incident", f"incident:{incident.id}", now, {
                **_actor(staff), "incident_id": incident.id, "category": category,
                "police_reference": police_reference}),)))
        return {"call_sid": sid, "incident_id": incident.id, "category": category,
                "police_reference": police_reference, "status": "open", "at": now.isoformat()}

    result, replayed = _run_once(_report_key("incident", sid, staff, fingerprint), fingerprint,
                                 REPORT_REPEAT_SECONDS, record, "incident already reported")
    return _answer(result, replayed)


@api.post("/calls/<sid>/proposal")
@roles_required(*ROLES)
def propose(sid: str) -> Response:
    """Propose the caller for the register; only a manager can decide (policy 5.2)."""
    staff, call = _acting_on(sid)
    body = _json_body()
    reason = _text_field(body, "reason", MAX_TEXT_CHARS, required=True)
    categories = body.get("categories")
    allowed = tuple(c.value for c in Category)
    if (not isinstance(categories, list) or not categories
            or any(c not in allowed for c in categories)):
        named = ", ".join(words.reason(c) for c in allowed)
        raise ApiError(422, f"choose one or more kinds of behaviour: {named}", "categories")
    categories = list(dict.fromkeys(categories))
    customer_ref = _text_field(body, "customer_ref", MAX_CUSTOMER_REF_CHARS)
    withheld = call.live.get("withheld") == "1" if call.live else bool(call.row
                                                                        and call.row.withheld)
    number = None if withheld else (call.live.get("from") or (call.row.from_number
                                                              if call.row else None))
    entry_id = call.live.get("entry_id", "")
    fingerprint = json.dumps([reason, categories, customer_ref])
    s = _services()

    def record() -> dict[str, Any]:
        now = clock.now_utc()
        with transaction(s.sessions) as db:
            ref = customer_ref
            if not ref and entry_id.isdigit():
                entry = db.get(RegisterEntry, int(entry_id))
                ref = entry.customer_ref if entry is not None else ""
            proposal = Proposal(call_sid=sid, phone_number=number or None, customer_ref=ref,
                                categories=categories, reason=reason, proposed_by_id=staff.id,
                                proposed_at=now, status="open")
            db.add(proposal)
            db.flush()
            s.event_sink.emit(Batch(sid, (Event("proposal", f"proposal:{proposal.id}", now, {
                **_actor(staff), "proposal_id": proposal.id, "categories": categories}),)))
        return {"call_sid": sid, "proposal_id": proposal.id, "status": "open",
                "categories": categories, "customer_ref": ref, "at": now.isoformat()}

    result, replayed = _run_once(_report_key("proposal", sid, staff, fingerprint), fingerprint,
                                 REPORT_REPEAT_SECONDS, record, "already proposed")
    return _answer(result, replayed)


@api.get("/openapi.json")
@public
def openapi() -> Response:
    """This API, described as OpenAPI 3."""
    return jsonify(openapi_document(_services().settings.public_base_url))
