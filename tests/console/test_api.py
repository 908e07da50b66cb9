"""The console JSON API: the live call, availability, warn, end, incidents and proposals."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

from console.tokens import issue_token
from store.agent_pool import AgentPool, Availability, Claim
from store.call_events import STREAM_KEY, Batch
from store.db import transaction
from store.live_call import live_call, set_live
from store.models import Call, Incident, Proposal, RegisterEntry
from store.twilio_rest import BaseUrlHttpClient
from tests.conftest import NOW, TODAY
from tests.console import signed_in
from usecases.register_csv import import_register

BASE = "https://callflow.test"
SID = "CA" + "1" * 32
OTHER_SID = "CA" + "3" * 32
UNKNOWN_SID = "CA" + "9" * 32
CONFERENCE = "CF" + "2" * 32
CALLER = "+447700900123"

REGISTER_CSV = (
    "customer_ref,name,phone_numbers,categories,reason,written_only,call_windows,"
    "designated_contact,fallback,visits_by_appointment,closed_issues,staff_notes,"
    "decided_by,decided_on,starts_on,ends_on,review_on,notice_sent_on,evidence,"
    "no_warning_reason\n"
    "QL-2,Chris Sample,07700 900123,unreasonable_persistence;aggressive_abusive,"
    "Shouted at staff on three calls,no,\"Tue,Thu 10:00-12:00\",supervisor@example.org,"
    "voicemail,yes,CMP-9: Kitchen refit,Prefers mornings,manager@example.org,2026-11-20,"
    "2026-11-25,2027-05-31,2027-05-01,,written: call notes,threats to staff\n"
)


@pytest.fixture
def rest(services, twilio_rest):
    """Send the service's Twilio REST calls to the Prism mock of Twilio's spec."""
    services.twilio_http = twilio_rest.http
    return twilio_rest.http


class AnsweringHttpClient(BaseUrlHttpClient):
    """Answers every Twilio request with one canned response (or fails to connect)."""

    def __init__(self, status: int = 0, body: str = ""):
        super().__init__("https://api.twilio.com")
        self.status, self.body, self.sent = status, body, []

    def request(self, method, url, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False):
        self.sent.append((method, url, data))
        if not self.status:
            raise requests.ConnectionError("connection refused")
        self._last.response = Response(self.status, self.body)
        return self._last.response


def bearer(services, member) -> dict[str, str]:
    """An API token's header for a staff member (cheaper than an Argon2 sign-in)."""
    with transaction(services.sessions) as db:
        return {"Authorization": f"Bearer {issue_token(db, member, NOW, 'test')}"}


def on_call(services, member, sid: str = SID, **fields: str) -> None:
    """A caller connected to `member` through their conference, as the call path leaves it."""
    live = {"state": "connected", "from": CALLER, "withheld": "0", "lookup_failed": "0",
            "entry_id": "", "outcome": "centre", "started": NOW.isoformat(),
            "staff_id": str(member.id), "conference_sid": CONFERENCE, **fields}
    set_live(services.redis, sid, live)
    AgentPool(services.redis).assign(member.id, sid)


def logged(services, kind: str, sid: str = SID) -> list:
    """The events of one kind on their way to the call log."""
    batches = [Batch.decode(fields) for _id, fields in services.redis.xrange(STREAM_KEY)]
    return [e for b in batches if b.call_sid == sid for e in b.events if e.kind == kind]


def register_entry(services) -> int:
    import_register(io.StringIO(REGISTER_CSV), services.register, "import:test", NOW, TODAY)
    with services.sessions() as db:
        return db.scalar(select(RegisterEntry.id).where(RegisterEntry.customer_ref == "QL-2"))


def sign(url: str, params: dict) -> str:
    return RequestValidator("test-auth-token").compute_signature(url, params)


# --- the live call -----------------------------------------------------------------------------


def test_no_call_is_null(client, services, staff):
    response = client.get("/api/calls/current", headers=bearer(services, staff["agent"]))
    assert response.status_code == 200 and response.json == {"call": None}


def test_signed_out_is_401(client):
    assert client.get("/api/calls/current").status_code == 401


def test_the_agent_sees_the_caller_and_the_person_of_interest_flag(client, services, staff):
    on_call(services, staff["agent"], entry_id=str(register_entry(services)))
    call = client.get("/api/calls/current", headers=bearer(services, staff["agent"])).json["call"]
    assert call["call_sid"] == SID and call["number"] == CALLER and call["state"] == "connected"
    # What the console shows, worded as the workspace words it: national number, GOV.UK time.
    assert (call["number_text"], call["started_at_text"]) == ("07700 900123", "10am")
    assert call["warned"] is False and call["register_check_failed"] is False
    assert call["customer"] == {"name": "Chris Sample", "reference": "QL-2"}
    flag = call["person_of_interest"]
    assert flag["flag"] is True
    assert [c["code"] for c in flag["categories"]] == ["unreasonable_persistence",
                                                       "aggressive_abusive"]
    assert flag["categories"][0]["label"] == "Unreasonable persistence (3.3)"
    assert flag["arrangements"] == {"call_windows": "Tue,Thu 10:00-12:00",
                                    "designated_contact": "Supervisor", "written_only": False,
                                    "visits_by_appointment": True, "call_limits": ""}
    assert flag["closed_issues"] == [{"reference": "CMP-9", "summary": "Kitchen refit"}]
    assert flag["staff_notes"] == "Prefers mornings"
    # Nothing more personal than the agent needs: no reason text, no other numbers.
    assert "reason" not in flag
    assert "Shouted" not in str(call)


def test_a_supervisor_may_look_at_any_live_call_and_sees_the_reason(client, services, staff):
    on_call(services, staff["agent"], entry_id=str(register_entry(services)))
    response = client.get(f"/api/calls/current?call={SID}",
                          headers=bearer(services, staff["supervisor"]))
    assert response.status_code == 200
    assert response.json["call"]["person_of_interest"]["reason"] == (
        "Shouted at staff on three calls")


def test_an_agent_may_not_look_at_someone_elses_call(client, services, staff):
    on_call(services, staff["agent2"])
    response = client.get(f"/api/calls/current?call={SID}",
                          headers=bearer(services, staff["agent"]))
    assert response.status_code == 403


def test_looking_up_an_unknown_call_is_404(client, services, staff):
    response = client.get(f"/api/calls/current?call={UNKNOWN_SID}",
                          headers=bearer(services, staff["supervisor"]))
    assert response.status_code == 404


@pytest.mark.parametrize(("fields", "number", "failed"), [
    ({"withheld": "1", "from": ""}, "withheld", False),
    ({"lookup_failed": "1"}, CALLER, True),
])
def test_withheld_numbers_and_failed_register_checks_are_shown(client, services, staff, fields,
                                                               number, failed):
    on_call(services, staff["agent"], **fields)
    call = client.get("/api/calls/current", headers=bearer(services, staff["agent"])).json["call"]
    assert call["number"] == number and call["register_check_failed"] is failed
    assert call["person_of_interest"] is None


# --- availability -------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["available", "away"])
def test_an_agent_sets_their_availability_for_the_call_path(client, services, staff, choice):
    response = client.put("/api/me/availability", json={"availability": choice},
                          headers=bearer(services, staff["agent"]))
    assert response.status_code == 200 and response.json["availability"] == choice
    assert AgentPool(services.redis).availability(staff["agent"].id).value == choice


@pytest.mark.parametrize("body", [{"availability": "busy"}, {"availability": "asleep"}, {},
                                  ["available"]])
def test_busy_and_nonsense_are_422_naming_the_field(client, services, staff, body):
    response = client.put("/api/me/availability", json=body,
                          headers=bearer(services, staff["agent"]))
    assert response.status_code == 422
    assert response.json["field"] in ("availability", "body")


def test_an_agent_on_a_call_cannot_become_available_until_it_ends(client, services, staff):
    on_call(services, staff["agent"])
    response = client.put("/api/me/availability", json={"availability": "available"},
                          headers=bearer(services, staff["agent"]))
    assert response.status_code == 409
    assert AgentPool(services.redis).availability(staff["agent"].id) is Availability.BUSY


def test_availability_needs_a_call_taking_role_and_a_sign_in(client, services, staff):
    body = {"availability": "available"}
    assert client.put("/api/me/availability", json=body).status_code == 401
    manager = client.put("/api/me/availability", json=body,
                         headers=bearer(services, staff["manager"]))
    assert manager.status_code == 403


def test_me_shows_who_and_where(client, services, staff):
    on_call(services, staff["agent"])
    me = client.get("/api/me", headers=bearer(services, staff["agent"])).json
    assert me["staff"]["email"] == "alex@example.org" and me["staff"]["role"] == "agent"
    assert me["availability"] == "busy" and me["current_call"] == SID


# --- the warning -------------------------------------------------------------------------------


def test_the_warning_is_announced_to_the_caller_and_logged(client, services, staff, rest):
    on_call(services, staff["agent"])
    headers = signed_in(client, "alex@example.org")  # the console's way: cookie and CSRF
    response = client.post(f"/api/calls/{SID}/warning", headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["warned"] is True and response.json["warning"] == 1
    rest.assert_all_accepted()
    [sent] = rest.requests
    assert sent.method == "POST"
    assert sent.path.endswith(f"/Conferences/{CONFERENCE}/Participants/{SID}.json")
    assert sent.params["AnnounceUrl"] == [
        f"{BASE}/twilio/voice/announce/warning?{urlencode({'call': SID})}"]
    assert sent.params["AnnounceMethod"] == ["POST"]
    [event] = logged(services, "warning")
    assert event.key == "warning:1"
    assert event.detail["staff_id"] == staff["agent"].id
    assert event.detail["staff_email"] == "alex@example.org"
    assert event.detail["text"] == services.settings.warning_text
    assert event.at == NOW
    assert live_call(services.redis, SID)["warned"] == "1"


def test_a_double_click_plays_one_warning(client, services, staff, rest):
    on_call(services, staff["agent"])
    headers = bearer(services, staff["agent"])
    first = client.post(f"/api/calls/{SID}/warning", headers=headers)
    second = client.post(f"/api/calls/{SID}/warning", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json and second.headers["Idempotent-Replay"] == "true"
    assert len(rest.requests) == 1 and len(logged(services, "warning")) == 1


def test_a_supervisor_may_warn_on_any_call(client, services, staff, rest):
    on_call(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/warning",
                           headers=bearer(services, staff["supervisor"]))
    assert response.status_code == 200
    rest.assert_all_accepted()
    assert logged(services, "warning")[0].detail["staff_email"] == "supervisor@example.org"


@pytest.mark.parametrize("action", ["warning", "end", "incident", "proposal"])
def test_an_agent_cannot_act_on_someone_elses_call(client, services, staff, action):
    on_call(services, staff["agent2"])
    body = {"reason": "threat_or_violence", "category": "aggressive_abusive",
            "categories": ["aggressive_abusive"]}
    response = client.post(f"/api/calls/{SID}/{action}", json=body,
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 403 and response.json == {"error": "you are not on this call"}
    assert services.redis.xlen(STREAM_KEY) == 0


@pytest.mark.parametrize("action", ["warning", "end", "incident", "proposal"])
@pytest.mark.parametrize("sid", [UNKNOWN_SID, "CA123", "not-a-call"])
def test_an_unknown_call_is_404(client, services, staff, action, sid):
    response = client.post(f"/api/calls/{sid}/{action}", json={},
                           headers=bearer(services, staff["supervisor"]))
    assert response.status_code == 404


@pytest.mark.parametrize("action", ["warning", "end", "incident", "proposal"])
def test_acting_signed_out_is_401(client, services, staff, action):
    on_call(services, staff["agent"])
    assert client.post(f"/api/calls/{SID}/{action}", json={}).status_code == 401


def test_a_waiting_caller_cannot_be_warned_yet(client, services, staff):
    on_call(services, staff["agent"], state="waiting", conference_sid="")
    response = client.post(f"/api/calls/{SID}/warning", headers=bearer(services, staff["agent"]))
    assert response.status_code == 409


def test_an_ended_call_cannot_be_warned(client, services, staff):
    on_call(services, staff["agent"], state="ended")
    response = client.post(f"/api/calls/{SID}/warning", headers=bearer(services, staff["agent"]))
    assert response.status_code == 409 and response.json["error"] == "call already ended"


# --- ending the call ----------------------------------------------------------------------------


def test_ending_before_a_warning_is_refused(client, services, staff):
    on_call(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 409 and response.json == {"error": "warn before ending"}
    assert services.redis.xlen(STREAM_KEY) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"reason": "rude"}, "reason"),
    ({"reason": "aggressive_abusive", "note": 42}, "note"),
    ({"reason": "aggressive_abusive", "note": "x" * 2001}, "note"),
])
def test_a_bad_reason_or_note_is_422_naming_the_field(client, services, staff, body, field):
    on_call(services, staff["agent"], warned="1")
    response = client.post(f"/api/calls/{SID}/end", json=body,
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 422 and response.json["field"] == field


def test_a_body_that_is_not_json_is_422(client, services, staff):
    on_call(services, staff["agent"], warned="1")
    response = client.post(f"/api/calls/{SID}/end", data="reason=aggressive_abusive",
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 422 and response.json["field"] == "body"


def test_warn_then_end_plays_the_closing_statement_and_logs_who_when_why(client, services,
                                                                        staff, rest):
    on_call(services, staff["agent"])
    headers = bearer(services, staff["agent"])
    assert client.post(f"/api/calls/{SID}/warning", headers=headers).status_code == 200
    body = {"reason": "aggressive_abusive", "note": "Swearing at me after the warning"}
    # End call waits until Twilio says the caller heard the warning (issue 14).
    early = client.post(f"/api/calls/{SID}/end", json=body, headers=headers)
    assert early.status_code == 409 and early.json == {
        "error": "the warning is still playing to the caller: end the call once it has finished"}
    path, query = "/twilio/voice/conference", urlencode({"call": SID})
    played = {"ConferenceSid": CONFERENCE, "CallSid": SID, "SequenceNumber": "7",
              "StatusCallbackEvent": "announcement-end", "AccountSid": "AC" + "0" * 32,
              "AnnounceUrl": f"{BASE}/twilio/voice/announce/warning?{query}"}
    assert client.post(f"{path}?{query}", data=played, headers={
        "X-Twilio-Signature": sign(f"{BASE}{path}?{query}", played)}).status_code == 204
    response = client.post(f"/api/calls/{SID}/end", json=body, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["ended"] is True and response.json["closing_statement"] is True
    rest.assert_all_accepted()
    announce, redirect = rest.requests
    assert "AnnounceUrl" in announce.params
    assert redirect.path.endswith(f"/Calls/{SID}.json")
    assert redirect.params["Url"] == [
        f"{BASE}/twilio/voice/announce/closing?{urlencode({'call': SID})}"]
    assert redirect.params["Method"] == ["POST"]
    [event] = logged(services, "ended_by_agent")
    assert event.detail["reason"] == "aggressive_abusive"
    assert event.detail["note"] == "Swearing at me after the warning"
    assert event.detail["warning"] == "played"
    assert event.detail["staff_email"] == "alex@example.org" and event.at == NOW
    assert live_call(services.redis, SID)["ended_by_agent"] == "1"


def test_the_same_end_twice_ends_the_call_once_with_one_log_entry(client, services, staff,
                                                                   rest):
    on_call(services, staff["agent"], warned="1")
    headers = bearer(services, staff["agent"])
    body = {"reason": "unreasonable_demands", "note": ""}
    first = client.post(f"/api/calls/{SID}/end", json=body, headers=headers)
    set_live(services.redis, SID, {"state": "ended"})  # Twilio's status callback arrives
    second = client.post(f"/api/calls/{SID}/end", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json
    assert len(rest.requests) == 1 and len(logged(services, "ended_by_agent")) == 1
    other = client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                        headers=headers)
    assert other.status_code == 409 and other.json == {"error": "call already ended"}


def test_a_call_that_has_ended_cannot_be_ended(client, services, staff):
    on_call(services, staff["agent"], warned="1", state="ended")
    response = client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 409 and response.json == {"error": "call already ended"}


def test_threats_end_the_call_at_once_and_flag_it_for_a_manager(client, services, staff, rest):
    on_call(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/end",
                           json={"reason": "threat_or_violence", "note": "Threatened to visit"},
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 200, response.json
    assert response.json["closing_statement"] is False
    rest.assert_all_accepted()
    [sent] = rest.requests
    assert sent.path.endswith(f"/Calls/{SID}.json") and sent.params["Status"] == ["completed"]
    with services.sessions() as db:
        incident = db.scalar(select(Incident))
    assert (incident.call_sid, incident.category, incident.status) == (
        SID, "threat_or_violence", "open")
    assert incident.reported_by_id == staff["agent"].id and incident.notes == "Threatened to visit"
    assert response.json["incident_id"] == incident.id
    [ended] = logged(services, "ended_by_agent")
    [flagged] = logged(services, "incident")
    assert ended.detail["incident_id"] == flagged.detail["incident_id"] == incident.id


def test_a_supervisor_may_end_any_call(client, services, staff, rest):
    on_call(services, staff["agent"], warned="1")
    response = client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                           headers=bearer(services, staff["supervisor"]))
    assert response.status_code == 200
    rest.assert_all_accepted()


# --- one click, then the reason as wrap-up ----------------------------------------------------


def test_one_click_ends_a_warned_call_and_no_call_is_offered_until_the_reason_is_given(
        client, services, staff, rest):
    alex = staff["agent"]
    on_call(services, alex, warned="1")
    headers = signed_in(client, "alex@example.org")
    pool = AgentPool(services.redis)

    response = client.post(f"/api/calls/{SID}/end", headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["ended"] is True and response.json["reason"] is None
    assert response.json["closing_statement"] is True and response.json["wrap_up_owed"] is True
    rest.assert_all_accepted()
    [redirect] = rest.requests
    assert redirect.params["Url"] == [
        f"{BASE}/twilio/voice/announce/closing?{urlencode({'call': SID})}"]
    [ended] = logged(services, "ended_by_agent")
    assert ended.detail["reason"] is None and ended.detail["wrap_up_owed"] is True
    assert ended.detail["staff_email"] == "alex@example.org"
    assert live_call(services.redis, SID)["ended_by_agent"] == "1"

    me = client.get("/api/me", headers=headers).json
    assert me["availability"] == "wrap-up" and me["wrap_up"] == {"call_sid": SID}
    # The caller hears the closing statement out and hangs up: the agent is still owed nothing.
    assert pool.release(alex.id, SID) is True
    assert pool.availability(alex.id) is Availability.WRAP_UP
    assert pool.claim_longest_idle(OTHER_SID) is None
    refused = client.put("/api/me/availability", json={"availability": "available"},
                         headers=headers)
    assert refused.status_code == 409
    assert refused.json == {"error": "give the reason for ending your last call first; then you "
                                     "can take calls again"}
    assert pool.claim_longest_idle(OTHER_SID) is None

    # (A reason of abuse or threats also gives time to recover: tests/console/test_recovery.py.)
    body = {"reason": "unreasonable_persistence", "note": "Same complaint after the warning"}
    given = client.post(f"/api/calls/{SID}/wrap-up", json=body, headers=headers)
    assert given.status_code == 200, given.json
    assert given.json["reason"] == "unreasonable_persistence"
    [wrap_up] = logged(services, "wrap_up")
    assert wrap_up.detail["reason"] == "unreasonable_persistence"
    assert wrap_up.detail["note"] == "Same complaint after the warning"
    assert wrap_up.detail["staff_id"] == alex.id
    assert wrap_up.detail["staff_email"] == "alex@example.org"
    me = client.get("/api/me", headers=headers).json
    assert me["availability"] == "available" and me["wrap_up"] is None
    assert pool.claim_longest_idle(OTHER_SID) == alex.id


def test_a_reason_given_before_the_caller_has_gone_frees_the_agent_when_the_call_ends(
        client, services, staff, rest):
    alex = staff["agent"]
    on_call(services, alex, warned="1")
    headers = bearer(services, alex)
    assert client.post(f"/api/calls/{SID}/end", json={}, headers=headers).status_code == 200
    given = client.post(f"/api/calls/{SID}/wrap-up", json={"reason": "unreasonable_demands"},
                        headers=headers)
    assert given.status_code == 200
    pool = AgentPool(services.redis)
    assert pool.availability(alex.id) is Availability.BUSY  # the closing statement still plays
    assert pool.claim_longest_idle(OTHER_SID) is None
    assert pool.release(alex.id, SID) is True
    assert pool.claim_longest_idle(OTHER_SID) == alex.id


def test_going_away_does_not_excuse_the_wrap_up(client, services, staff, rest):
    alex = staff["agent"]
    on_call(services, alex, warned="1")
    headers = bearer(services, alex)
    assert client.post(f"/api/calls/{SID}/end", json={}, headers=headers).status_code == 200
    AgentPool(services.redis).release(alex.id, SID)
    away = client.put("/api/me/availability", json={"availability": "away"}, headers=headers)
    assert away.status_code == 200 and away.json["wrap_up"] == {"call_sid": SID}
    back = client.put("/api/me/availability", json={"availability": "available"},
                      headers=headers)
    assert back.status_code == 409
    assert AgentPool(services.redis).claim_longest_idle(OTHER_SID) is None


def test_a_designated_contact_owing_a_wrap_up_is_passed_over_as_busy(client, services, staff,
                                                                     rest):
    alex = staff["agent"]
    on_call(services, alex, warned="1")
    assert client.post(f"/api/calls/{SID}/end", json={},
                       headers=bearer(services, alex)).status_code == 200
    pool = AgentPool(services.redis)
    pool.release(alex.id, SID)
    assert pool.claim_named(alex.id, OTHER_SID) is Claim.BUSY
    assert pool.current_call(alex.id) is None


def test_the_wrap_up_is_recorded_once(client, services, staff, rest):
    on_call(services, staff["agent"], warned="1")
    headers = bearer(services, staff["agent"])
    first_end = client.post(f"/api/calls/{SID}/end", json={}, headers=headers)
    again = client.post(f"/api/calls/{SID}/end", json={}, headers=headers)
    assert again.status_code == 200 and again.json == first_end.json
    assert again.headers["Idempotent-Replay"] == "true"
    late_reason = client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                              headers=headers)
    assert late_reason.status_code == 409
    assert len(rest.requests) == 1 and len(logged(services, "ended_by_agent")) == 1

    body = {"reason": "unreasonable_persistence", "note": "Fourth call today"}
    first = client.post(f"/api/calls/{SID}/wrap-up", json=body, headers=headers)
    second = client.post(f"/api/calls/{SID}/wrap-up", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json and second.headers["Idempotent-Replay"] == "true"
    other = client.post(f"/api/calls/{SID}/wrap-up", json={"reason": "aggressive_abusive"},
                        headers=headers)
    assert other.status_code == 409
    assert other.json == {"error": "the reason for this call is already recorded"}
    assert len(logged(services, "wrap_up")) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({}, "reason"),
    ({"reason": "threat_or_violence"}, "reason"),
    ({"reason": "aggressive_abusive", "note": "x" * 2001}, "note"),
])
def test_a_bad_wrap_up_is_422_and_still_owed(client, services, staff, rest, body, field):
    on_call(services, staff["agent"], warned="1")
    headers = bearer(services, staff["agent"])
    assert client.post(f"/api/calls/{SID}/end", json={}, headers=headers).status_code == 200
    response = client.post(f"/api/calls/{SID}/wrap-up", json=body, headers=headers)
    assert response.status_code == 422 and response.json["field"] == field
    assert AgentPool(services.redis).wrap_up_owed(staff["agent"].id) == SID
    assert logged(services, "wrap_up") == []


def test_no_wrap_up_is_owed_for_a_call_ended_with_its_reason(client, services, staff, rest):
    on_call(services, staff["agent"], warned="1")
    headers = bearer(services, staff["agent"])
    body = {"reason": "aggressive_abusive"}
    assert client.post(f"/api/calls/{SID}/end", json=body, headers=headers).json[
        "wrap_up_owed"] is False
    response = client.post(f"/api/calls/{SID}/wrap-up", json=body, headers=headers)
    assert response.status_code == 409
    assert response.json == {"error": "no reason is waiting for this call"}
    assert AgentPool(services.redis).wrap_up_owed(staff["agent"].id) is None


def test_a_threat_ends_at_once_without_a_warning_and_owes_no_wrap_up(client, services, staff,
                                                                     rest):
    alex = staff["agent"]
    on_call(services, alex)
    response = client.post(f"/api/calls/{SID}/end", json={"reason": "threat_or_violence"},
                           headers=bearer(services, alex))
    assert response.status_code == 200 and response.json["wrap_up_owed"] is False
    pool = AgentPool(services.redis)
    assert pool.wrap_up_owed(alex.id) is None
    pool.release(alex.id, SID)
    # A threat gives the agent time to recover (tests/console/test_recovery.py); once it is
    # over, no wrap-up stands between them and the next call.
    assert pool.availability(alex.id) is Availability.RECOVERING
    assert pool.claim_longest_idle(OTHER_SID) is None
    pool.end_recovery(alex.id)
    assert pool.claim_longest_idle(OTHER_SID) == alex.id


def test_one_click_before_a_warning_is_refused(client, services, staff):
    on_call(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/end", json={},
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 409 and response.json == {"error": "warn before ending"}
    assert AgentPool(services.redis).wrap_up_owed(staff["agent"].id) is None


# --- when Twilio says no ------------------------------------------------------------------------


@pytest.mark.parametrize(("http", "status", "message"), [
    (AnsweringHttpClient(400, '{"code": 21201, "message": "No \'To\' number is specified"}'), 502,
     "Twilio refused: No 'To' number is specified"),
    (AnsweringHttpClient(503, "{}"), 503, "Twilio could not be reached"),
    (AnsweringHttpClient(), 503, "Twilio could not be reached"),
])
@pytest.mark.parametrize(("action", "body"), [
    ("warning", None), ("end", {"reason": "aggressive_abusive"}),
    ("end", {"reason": "threat_or_violence"}),
])
def test_a_twilio_refusal_is_reported_and_nothing_is_half_recorded(client, services, staff, http,
                                                                   status, message, action,
                                                                   body):
    http.sent.clear()
    services.twilio_http = http
    on_call(services, staff["agent"], warned="1")
    headers = bearer(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/{action}", json=body, headers=headers)
    assert response.status_code == status
    assert response.json["error"].startswith(message)
    assert len(http.sent) == 1
    assert services.redis.xlen(STREAM_KEY) == 0
    assert "ended_by_agent" not in live_call(services.redis, SID)
    with services.sessions() as db:
        assert db.scalar(select(func.count()).select_from(Incident)) == 0
    # Nothing was held back either: trying again goes to Twilio again.
    client.post(f"/api/calls/{SID}/{action}", json=body, headers=headers)
    assert len(http.sent) == 2


def test_twilio_saying_the_call_is_over_is_409(client, services, staff):
    services.twilio_http = AnsweringHttpClient(
        400, '{"code": 21220, "message": "Call is not in-progress. Cannot redirect."}')
    on_call(services, staff["agent"], warned="1")
    response = client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 409 and response.json == {"error": "call already ended"}


# --- incidents and proposals --------------------------------------------------------------------


def test_an_incident_is_recorded_for_a_manager_and_logged(client, services, staff):
    on_call(services, staff["agent"])
    body = {"category": "aggressive_abusive", "police_reference": "DUR-123",
            "notes": "Threatening language"}
    response = client.post(f"/api/calls/{SID}/incident", json=body,
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 200
    again = client.post(f"/api/calls/{SID}/incident", json=body,
                        headers=bearer(services, staff["agent"]))
    assert again.json == response.json
    with services.sessions() as db:
        [incident] = db.scalars(select(Incident)).all()
    assert (incident.police_reference, incident.notes, incident.status) == (
        "DUR-123", "Threatening language", "open")
    [event] = logged(services, "incident")
    assert event.detail["incident_id"] == incident.id == response.json["incident_id"]


@pytest.mark.parametrize(("body", "field"), [
    ({"category": "grumpy"}, "category"),
    ({"category": "aggressive_abusive", "police_reference": "x" * 81}, "police_reference"),
    ({"category": "aggressive_abusive", "notes": ["a"]}, "notes"),
])
def test_a_bad_incident_is_422(client, services, staff, body, field):
    on_call(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/incident", json=body,
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 422 and response.json["field"] == field


def test_an_incident_can_be_reported_after_the_call_has_gone(client, services, staff):
    with transaction(services.sessions) as db:
        db.add(Call(call_sid=OTHER_SID, agent_id=staff["agent"].id, from_number=CALLER))
    body = {"category": "threat_or_violence"}
    mine = client.post(f"/api/calls/{OTHER_SID}/incident", json=body,
                       headers=bearer(services, staff["agent"]))
    theirs = client.post(f"/api/calls/{OTHER_SID}/incident", json=body,
                         headers=bearer(services, staff["agent2"]))
    assert (mine.status_code, theirs.status_code) == (200, 403)
    warn = client.post(f"/api/calls/{OTHER_SID}/warning", headers=bearer(services, staff["agent"]))
    assert warn.status_code == 409


def test_a_proposal_waits_for_a_manager(client, services, staff):
    on_call(services, staff["agent"])
    body = {"reason": "Calls ten times a day about the same repair",
            "categories": ["unreasonable_persistence"]}
    response = client.post(f"/api/calls/{SID}/proposal", json=body,
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 200 and response.json["status"] == "open"
    with services.sessions() as db:
        proposal = db.scalar(select(Proposal))
    assert proposal.status == "open" and proposal.phone_number == CALLER
    assert proposal.categories == ["unreasonable_persistence"]
    assert proposal.proposed_by_id == staff["agent"].id
    assert logged(services, "proposal")[0].detail["proposal_id"] == proposal.id


@pytest.mark.parametrize(("body", "field"), [
    ({"categories": ["aggressive_abusive"]}, "reason"),
    ({"reason": "x", "categories": []}, "categories"),
    ({"reason": "x", "categories": ["threat_or_violence"]}, "categories"),
    ({"reason": "x", "categories": ["aggressive_abusive"], "customer_ref": "x" * 65},
     "customer_ref"),
])
def test_a_bad_proposal_is_422(client, services, staff, body, field):
    on_call(services, staff["agent"])
    response = client.post(f"/api/calls/{SID}/proposal", json=body,
                           headers=bearer(services, staff["agent"]))
    assert response.status_code == 422 and response.json["field"] == field


# --- the statements Twilio fetches ------------------------------------------------------------


@pytest.mark.parametrize(("path", "setting"), [
    ("/twilio/voice/announce/warning", "warning_text"),
    ("/twilio/voice/announce/closing", "closing_text"),
])
def test_the_statements_are_twiml_that_only_speaks(client, services, path, setting):
    query = urlencode({"call": SID})
    params = {"CallSid": SID, "ConferenceSid": CONFERENCE, "AccountSid": "AC" + "0" * 32}
    response = client.post(f"{path}?{query}", data=params,
                           headers={"X-Twilio-Signature": sign(f"{BASE}{path}?{query}", params)})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    assert [e.tag for e in root] == ["Say"]
    assert root.findtext("./Say") == getattr(services.settings, setting)
    assert root.find("./Say").get("language") == "en-GB"


@pytest.mark.parametrize("path", ["/twilio/voice/announce/warning",
                                  "/twilio/voice/announce/closing"])
def test_unsigned_statement_requests_are_refused(client, path):
    assert client.post(path, data={"CallSid": SID}).status_code == 403


# --- the document -------------------------------------------------------------------------------


def test_the_api_is_described_by_an_openapi_document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= {
        "/api/calls/current", "/api/me/availability", "/api/calls/{CallSid}/warning",
        "/api/calls/{CallSid}/end", "/api/calls/{CallSid}/incident",
        "/api/calls/{CallSid}/wrap-up",
    }
    end = document["paths"]["/api/calls/{CallSid}/end"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422", "502", "503"} <= set(end)
