"""The phone simulator (development only): a caller's phone in the browser, and Twilio's REST API.

A person calls the centre from /simulator; the emulator plays Twilio, posting the same signed
webhooks to PUBLIC_BASE_URL that Twilio would. The workers' REST requests reach the fake API
under /simulator/twilio (set TWILIO_API_BASE_URL to it), which answers as Twilio does and hands
each request to the emulator. A staff leg rings the agent's console, which answers it here.
"""

from __future__ import annotations

import base64
import hmac
import re
from datetime import date
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import NotFound

from callflow.phone import InvalidNumber, normalise
from config import clock
from console.auth import current_session, current_staff, login_required, public
from console.security import CsrfRefused, check_csrf
from simulator.emulator import API_VERSION, new_sid
from simulator.runtime import WITHHELD, Simulator, new_sim_id
from usecases.bootstrap import services_of
from usecases.demo import demo_rows

simulator = Blueprint("simulator", __name__, url_prefix="/simulator",
                      template_folder=str(Path(__file__).parent.parent / "console" / "templates"))

SIM_ID = re.compile(r"^SM[0-9a-f]{24}$")
SID = re.compile(r"^(CA|CF)[0-9a-fA-F]{32}$")
DIGITS = re.compile(r"^[0-9*#]{1,20}$")
CALLER_ACTIONS = frozenset({"press", "silence", "message", "dial", "hangup"})
DIAL_OUTCOMES = frozenset({"answered", "no-answer", "busy"})
LEG_ACTS = frozenset({"answer", "machine", "decline", "hangup"})
REST_PREFIX = f"/twilio/{API_VERSION}/Accounts/<account>"


def _simulator() -> Simulator:
    return Simulator(services_of(current_app))


def _json_error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


# -- the caller's phone --------------------------------------------------------------------------


def demo_callers(today: date) -> list[dict[str, str]]:
    """The demo people of interest a person can call as, with what their entry arranges."""
    callers = []
    for row in demo_rows(today):
        arrangements = []
        if row.get("written_only") == "yes":
            arrangements.append("written contact only")
        if row.get("call_windows"):
            arrangements.append(f"calls {row['call_windows']}")
        if row.get("designated_contact"):
            arrangements.append(f"designated contact {row['designated_contact'].split('@')[0]}")
        if row.get("fallback") and "@" in row["fallback"]:
            arrangements.append(f"fallback {row['fallback'].split('@')[0]}")
        if row.get("call_frequency"):
            arrangements.append(f"at most {row['call_frequency']}")
        if row.get("max_call_minutes"):
            arrangements.append(f"calls of up to {row['max_call_minutes']} minutes")
        number = row["phone_numbers"].split(";")[0].strip()
        callers.append({"number": number, "name": row["name"],
                        "arrangements": ", ".join(arrangements) or "no arrangements"})
    return callers


@simulator.get("")
@public
def phone() -> str:
    """The phone: choose who is calling, call, hear what Twilio says, press keys, hang up."""
    settings = services_of(current_app).settings
    expected = f"{settings.public_base_url}/simulator/twilio"
    return render_template("simulator.html", callers=demo_callers(clock.local_today(settings.tz)),
                           centre_number=settings.twilio_phone_number,
                           rest_base=settings.twilio_api_base_url, expected_rest_base=expected,
                           twilio_configured=settings.twilio_configured)


def _from_number(body: dict[str, Any]) -> str:
    choice = str(body.get("from", "")).strip()
    if choice == "withheld":
        return WITHHELD
    if len(choice) > 32 or not re.fullmatch(r"[+0-9 ()-]+", choice):
        raise InvalidNumber("type a phone number, such as 07700 900321")
    try:
        return normalise(choice)
    except InvalidNumber as error:
        raise InvalidNumber(f"{choice} cannot be a phone number") from error


@simulator.post("/calls")
@public
def place_call() -> Response:
    """Ring the centre as a number (or withheld); answers the simulated call's id at once."""
    body = request.get_json(silent=True) or {}
    try:
        number = _from_number(body)
    except InvalidNumber as error:
        return _json_error(422, str(error))
    sim = new_sim_id()
    _simulator().submit(sim, {"do": "place", "from": number})
    response = jsonify(sim=sim, **{"from": number})
    response.status_code = 202
    return response


@simulator.get("/calls/<sim>")
@public
def call_view(sim: str) -> Response:
    """What the caller has heard so far, and what the call waits on."""
    if not SIM_ID.match(sim):
        raise NotFound()
    engine = _simulator()
    engine.run_due_timers()
    view = engine.view(sim)
    if view is None:
        return jsonify(sim=sim, status="placing", transcript=[], legs=[], rest=[], errors=[],
                       problems=[], over=False, waiting_for=None)
    return jsonify(view)


@simulator.post("/calls/<sim>/<action>")
@public
def caller_does(sim: str, action: str) -> Response:
    """The caller presses keys, stays silent, leaves a message, or hangs up."""
    if not SIM_ID.match(sim) or action not in CALLER_ACTIONS:
        raise NotFound()
    body = request.get_json(silent=True) or {}
    step: dict[str, Any] = {"do": action}
    if action == "press":
        digits = str(body.get("digits", ""))
        if not DIGITS.match(digits):
            return _json_error(422, "press 0-9, * or #")
        step["digits"] = digits
    elif action == "dial":
        outcome = str(body.get("outcome", "answered"))
        if outcome not in DIAL_OUTCOMES:
            return _json_error(422, f"outcome is one of {', '.join(sorted(DIAL_OUTCOMES))}")
        step["outcome"] = outcome
    elif action == "message":
        step["seconds"] = 10
    _simulator().submit(sim, step)
    return jsonify(queued=action)


# -- the agent's console: a staff leg rings in the browser --------------------------------------


def _my_target() -> str | None:
    staff = current_staff()
    return staff.dial_target if staff is not None else None


@simulator.get("/legs")
@login_required
def my_legs() -> Response:
    """Simulated staff legs ringing (or connected to) the signed-in member of staff."""
    engine = _simulator()
    engine.run_due_timers()
    target = _my_target()
    legs = engine.legs_for(target) if target else []
    return jsonify(legs=[{"sid": leg["sid"], "status": leg["status"]} for leg in legs])


@simulator.post("/legs/<sid>/<act>")
@login_required
def leg_does(sid: str, act: str) -> Response:
    """The member of staff answers, declines or hangs up a simulated leg that rang them."""
    if not SID.match(sid) or act not in LEG_ACTS:
        raise NotFound()
    live = current_session()
    if live is not None:
        # The simulator blueprint is exempt from the global check (the caller's phone has no
        # session); a staff member's action still needs their token.
        try:
            check_csrf(live.csrf)
        except CsrfRefused as refused:
            return _json_error(refused.status, refused.message)
    engine = _simulator()
    leg = engine.leg(sid)
    if leg is None or leg["to"] != _my_target():
        return _json_error(404, "no such call is ringing you")
    engine.submit(leg["sim"], {"do": "leg", "leg": sid, "act": act})
    return jsonify(queued=act)


# -- Twilio's REST API, as the workers call it ---------------------------------------------------


def _now() -> str:
    return formatdate(usegmt=True)


def _twilio_error(status: int, code: int, message: str) -> Response:
    response = jsonify(code=code, message=message, status=status,
                       more_info=f"https://www.twilio.com/docs/errors/{code}")
    response.status_code = status
    return response


def _not_found() -> Response:
    return _twilio_error(404, 20404, f"The requested resource {_rest_path()} was not found")


def _authenticated(account: str) -> Response | None:
    """Twilio's HTTP basic auth: the account SID and auth token."""
    settings = services_of(current_app).settings
    header = request.headers.get("Authorization", "")
    given = ""
    if header[:6].lower() == "basic ":
        try:
            given = base64.b64decode(header[6:]).decode()
        except (ValueError, UnicodeDecodeError):
            given = ""
    expected = f"{settings.twilio_account_sid}:{settings.twilio_auth_token}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        response = _twilio_error(401, 20003, "Authenticate")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response
    if account != settings.twilio_account_sid:
        return _not_found()
    return None


def _call_json(account: str, sid: str, status: str, *, to: str = "", from_: str = "",
               direction: str = "outbound-api") -> dict[str, Any]:
    uri = f"/{API_VERSION}/Accounts/{account}/Calls/{sid}"
    return {
        "sid": sid, "account_sid": account, "parent_call_sid": None, "to": to,
        "to_formatted": to, "from": from_, "from_formatted": from_, "phone_number_sid": None,
        "status": status, "start_time": None, "end_time": None, "duration": None,
        "price": None, "price_unit": "USD", "direction": direction, "answered_by": None,
        "api_version": API_VERSION, "forwarded_from": None, "group_sid": None,
        "caller_name": None, "queue_time": "0", "trunk_sid": None, "date_created": _now(),
        "date_updated": _now(), "uri": uri + ".json",
        "subresource_uris": {name: f"{uri}/{name}.json" for name in
                             ("notifications", "recordings", "payments", "events", "siprec",
                              "streams", "transcriptions", "user_defined_message_subscriptions",
                              "user_defined_messages")},
    }


def _form() -> dict[str, list[str]]:
    return {key: request.form.getlist(key) for key in request.form}


def _rest_path() -> str:
    return request.path.removeprefix("/simulator/twilio")


@simulator.route(f"{REST_PREFIX}/Calls.json", methods=["POST"])
@public
def rest_create_call(account: str) -> Response:
    """Calls.create: ring someone for a simulated caller (the URL's call= names the caller)."""
    refused = _authenticated(account)
    if refused is not None:
        return refused
    form = request.form
    if not form.get("To") or not form.get("From") or not (form.get("Url") or form.get("Twiml")):
        return _twilio_error(400, 21201, "To, From and Url (or Twiml) are required")
    engine = _simulator()
    caller = parse_qs(urlsplit(form.get("Url", "")).query).get("call", [""])[-1]
    sim = engine.sim_for(caller) if caller else None
    sid = new_sid("CA")
    if sim is None:
        engine.log_unmatched("POST", _rest_path(), f"no simulated call {caller or '(none)'}")
    else:
        engine.claim(sid, sim)
        engine.submit(sim, {"do": "rest", "method": "POST", "path": _rest_path(),
                            "params": _form(), "sid": sid})
    response = jsonify(_call_json(account, sid, "queued", to=form["To"], from_=form["From"]))
    response.status_code = 201
    return response


def _simulated(sid: str):
    """The engine, the simulated call a REST sid belongs to, and its view (None, None if none)."""
    engine = _simulator()
    sim = engine.sim_for(sid) if SID.match(sid) else None
    return engine, sim, (engine.view(sim) if sim else None)


@simulator.route(f"{REST_PREFIX}/Calls/<sid>.json", methods=["GET", "POST"])
@public
def rest_call(account: str, sid: str) -> Response:
    """Fetch or update a call: redirect it (Url) or end it (Status=completed)."""
    refused = _authenticated(account)
    if refused is not None:
        return refused
    engine, sim, view = _simulated(sid)
    status = (view or {}).get("calls", {}).get(sid, "queued" if sim else None)
    if sim is None or status is None:
        return _not_found()
    if request.method == "POST":
        final = status in ("completed", "busy", "failed", "no-answer", "canceled")
        if final and (request.form.get("Url") or request.form.get("Twiml")):
            return _twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
        engine.submit(sim, {"do": "rest", "method": "POST", "path": _rest_path(),
                            "params": _form()})
        if request.form.get("Status") in ("completed", "canceled") and not final:
            status = request.form["Status"]
    return jsonify(_call_json(account, sid, status))


@simulator.route(f"{REST_PREFIX}/Recordings/<sid>.json", methods=["DELETE"])
@public
def rest_delete_recording(account: str, sid: str) -> Response | tuple[str, int]:
    """Delete a recording (retention, issue 14): simulated recordings hold no audio to delete."""
    refused = _authenticated(account)
    if refused is not None:
        return refused
    if not re.fullmatch(r"RE[0-9a-f]{32}", sid):
        return _not_found()
    return "", 204


@simulator.route(f"{REST_PREFIX}/Conferences/<sid>.json", methods=["POST"])
@public
def rest_conference(account: str, sid: str) -> Response:
    """Update a conference (Status=completed ends it)."""
    refused = _authenticated(account)
    if refused is not None:
        return refused
    engine, sim, view = _simulated(sid)
    if sim is None or sid not in (view or {}).get("conferences", {}):
        return _not_found()
    engine.submit(sim, {"do": "rest", "method": "POST", "path": _rest_path(), "params": _form()})
    return jsonify({"sid": sid, "account_sid": account, "status": request.form.get(
        "Status", "in-progress"), "api_version": API_VERSION, "date_created": _now(),
        "date_updated": _now(), "uri": f"/{API_VERSION}/Accounts/{account}/Conferences/{sid}.json"})


@simulator.route(f"{REST_PREFIX}/Conferences/<conference>/Participants.json", methods=["POST"])
@public
def rest_add_participant(account: str, conference: str) -> Response:
    """Participants.create: ring a supervisor into a simulated call's conference (issue 14)."""
    refused = _authenticated(account)
    if refused is not None:
        return refused
    form = request.form
    if not form.get("To") or not form.get("From"):
        return _twilio_error(400, 21201, "To and From are required")
    engine = _simulator()
    sim = engine.sim_for(conference) if SID.match(conference) else None
    if sim is None:
        return _not_found()
    sid = new_sid("CA")
    engine.claim(sid, sim)
    engine.submit(sim, {"do": "rest", "method": "POST", "path": _rest_path(), "params": _form(),
                        "sid": sid})
    uri = f"/{API_VERSION}/Accounts/{account}/Conferences/{conference}/Participants/{sid}.json"
    response = jsonify({
        "account_sid": account, "call_sid": sid, "conference_sid": conference, "label": None,
        "call_sid_to_coach": form.get("CallSidToCoach"), "coaching": form.get("Coaching") == "true",
        "end_conference_on_exit": form.get("EndConferenceOnExit") == "true",
        "muted": form.get("Muted") == "true", "hold": False,
        "start_conference_on_enter": form.get("StartConferenceOnEnter") != "false",
        "status": "queued", "queue_time": None, "date_created": _now(), "date_updated": _now(),
        "uri": uri,
    })
    response.status_code = 201
    return response


@simulator.route(f"{REST_PREFIX}/Conferences/<conference>/Participants/<sid>.json",
                 methods=["POST"])
@public
def rest_participant(account: str, conference: str, sid: str) -> Response:
    """Update a participant: an announcement (AnnounceUrl) played to that call alone."""
    refused = _authenticated(account)
    if refused is not None:
        return refused
    engine = _simulator()
    sim = engine.sim_for(conference) if SID.match(conference) else None
    view = engine.view(sim) if sim else None
    if sim is None or sid not in (view or {}).get("conferences", {}).get(conference, []):
        return _not_found()
    engine.submit(sim, {"do": "rest", "method": "POST", "path": _rest_path(), "params": _form()})
    uri = f"/{API_VERSION}/Accounts/{account}/Conferences/{conference}/Participants/{sid}.json"
    return jsonify({
        "account_sid": account, "call_sid": sid, "conference_sid": conference, "label": None,
        "call_sid_to_coach": None, "coaching": False, "end_conference_on_exit": False,
        "muted": request.form.get("Muted") == "true", "hold": request.form.get("Hold") == "true",
        "start_conference_on_enter": True, "status": "connected", "queue_time": None,
        "date_created": _now(), "date_updated": _now(), "uri": uri,
    })
