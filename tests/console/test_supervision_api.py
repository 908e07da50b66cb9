"""Issue 14 items 1 and 2: "I need help", the supervisors' alerts, listen / coach / barge.

Every REST request goes to the Prism mock of Twilio's spec; events are read off the stream the
pump moves into the call log.
"""

from __future__ import annotations

import pytest

from callflow.supervision import SupervisionMode, SupervisionRefusal
from console.workspace.timeline import describe
from store.agent_pool import AgentPool
from store.call_queries import TimelineEvent
from store.db import transaction
from store.help_alerts import SupervisorLeg, Supervisors
from store.live_call import set_live
from store.models import RegisterEntry
from tests.conftest import NOW, TODAY
from tests.console import signed_in
from tests.console.test_api import (
    BASE,
    CALLER,
    CONFERENCE,
    OTHER_SID,
    SID,
    bearer,
    logged,
    on_call,
    sign,
)

AGENT_LEG = "CA" + "5" * 32
LEG = "CA" + "6" * 32
uses_twilio = pytest.mark.usefixtures("prism")


@pytest.fixture
def prism(services, twilio_rest):
    """Send the service's Twilio REST calls to the Prism mock of Twilio's spec; its recorder."""
    services.twilio_http = twilio_rest.http
    return twilio_rest.http


@pytest.fixture
def alex(staff):
    return staff["agent"]


@pytest.fixture
def sam(staff):
    return staff["supervisor"]


def register_entry(services, manager) -> int:
    """A register entry QL-2 (written directly: the alert reads only its id and reference)."""
    with transaction(services.sessions) as db:
        entry = RegisterEntry(customer_ref="QL-2", name="Chris Sample",
                              categories=["aggressive_abusive"], reason="Shouted at staff",
                              decided_by_id=manager.id, decided_on=TODAY, starts_on=TODAY,
                              ends_on=TODAY.replace(year=TODAY.year + 1), created_at=NOW,
                              updated_at=NOW)
        db.add(entry)
        db.flush()
        return entry.id


def connected(services, member, sid: str = SID, **fields: str) -> None:
    """A caller connected to `member`, whose own leg is AGENT_LEG."""
    on_call(services, member, sid, ringing_leg_sid=AGENT_LEG, **fields)


def ask(client, services, member, sid: str = SID):
    return client.post(f"/api/calls/{sid}/help", headers=bearer(services, member))


def alerts(client, services, member):
    response = client.get("/api/help/alerts", headers=bearer(services, member))
    assert response.status_code == 200, response.json
    return response.json["alerts"]


# --- "I need help" -----------------------------------------------------------------------------


def test_help_alerts_every_available_supervisor_with_the_caller_and_the_agent(
        client, services, staff, alex, sam):
    connected(services, alex)
    response = ask(client, services, alex)
    assert response.status_code == 200, response.json
    assert response.json == {"call_sid": SID, "help": "raised", "repeat": False,
                             "raised_at": "2026-12-01T10:00:00+00:00"}
    [asked] = logged(services, "help_requested")
    assert asked.detail == {"staff_id": alex.id, "staff_email": alex.email, "via": "token"}

    expected = [{"call_sid": SID, "agent": "Agent", "caller": "07700 900123",
                 "on_register": False, "raised_at_text": "10am",
                 "text": "Agent needs help on a call with 07700 900123. "
                         "The caller is not on the register.",
                 "answered_by_you": False, "my_mode": None}]
    assert alerts(client, services, sam) == expected
    assert alerts(client, services, staff["manager"]) == expected


def test_the_alert_gives_the_register_reference_when_the_caller_is_on_it(
        client, services, staff, alex, sam):
    entry_id = register_entry(services, staff["manager"])
    connected(services, alex, entry_id=str(entry_id))
    ask(client, services, alex)
    [alert] = alerts(client, services, sam)
    assert alert["caller"] == "07700 900123 (register entry QL-2)"
    assert alert["on_register"] is True
    assert alert["text"].endswith("The caller is on the person of interest register.")


def test_a_second_click_is_the_same_alert(client, services, alex, sam):
    connected(services, alex)
    ask(client, services, alex)
    again = ask(client, services, alex)
    assert again.status_code == 200 and again.json["repeat"] is True
    assert len(logged(services, "help_requested")) == 1
    assert len(alerts(client, services, sam)) == 1


def test_a_supervisor_on_a_call_of_their_own_is_not_alerted(client, services, alex, sam):
    connected(services, alex)
    ask(client, services, alex)
    AgentPool(services.redis).assign(sam.id, OTHER_SID)
    assert alerts(client, services, sam) == []


def test_an_agent_cannot_ask_for_help_on_someone_elses_call(client, services, staff, alex):
    connected(services, alex)
    response = ask(client, services, staff["agent2"])
    assert response.status_code == 403
    assert response.json == {"error": "you are not on this call"}


def test_help_on_a_call_not_yet_connected_is_refused_plainly(client, services, alex):
    connected(services, alex, state="ringing")
    response = ask(client, services, alex)
    assert response.status_code == 409
    assert response.json == {"error": SupervisionRefusal.NOT_ON_CALL.value}


def test_the_first_supervisor_to_answer_is_logged(client, services, staff, alex, sam):
    connected(services, alex)
    ask(client, services, alex)
    first = client.post(f"/api/calls/{SID}/help/answer", headers=bearer(services, sam))
    assert first.status_code == 200
    assert first.json == {"call_sid": SID, "answered": True, "answered_by": "Supervisor"}
    later = client.post(f"/api/calls/{SID}/help/answer",
                        headers=bearer(services, staff["manager"]))
    assert later.json == {"call_sid": SID, "answered": False, "answered_by": "Supervisor"}
    [answered] = logged(services, "help_answered")
    assert answered.detail["staff_id"] == sam.id
    assert alerts(client, services, staff["manager"]) == [], "answered: no longer waiting"
    [mine] = alerts(client, services, sam)
    assert (mine["answered_by_you"], mine["my_mode"]) == (True, None), "theirs till it ends"
    on_call(services, alex, state="ended")
    assert alerts(client, services, sam) == []


def test_the_agent_learns_who_answered_their_call_for_help(client, services, staff, alex, sam):
    connected(services, alex)
    status = client.get(f"/api/calls/{SID}/help", headers=bearer(services, alex))
    assert status.json == {"call_sid": SID, "help": None, "answered_by": None}
    ask(client, services, alex)
    status = client.get(f"/api/calls/{SID}/help", headers=bearer(services, alex))
    assert status.json == {"call_sid": SID, "help": "raised", "answered_by": None}
    client.post(f"/api/calls/{SID}/help/answer", headers=bearer(services, sam))
    status = client.get(f"/api/calls/{SID}/help", headers=bearer(services, alex))
    assert status.json == {"call_sid": SID, "help": "answered", "answered_by": "Supervisor"}
    other = client.get(f"/api/calls/{SID}/help", headers=bearer(services, staff["agent2"]))
    assert other.status_code == 403


def test_answering_a_call_nobody_asked_help_on_is_refused(client, services, alex, sam):
    connected(services, alex)
    response = client.post(f"/api/calls/{SID}/help/answer", headers=bearer(services, sam))
    assert response.status_code == 409
    assert response.json == {"error": SupervisionRefusal.NO_ALERT.value}


# --- roles on every new route ------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", "/api/help/alerts", None),
    ("post", f"/api/calls/{SID}/help/answer", None),
    ("post", f"/api/calls/{SID}/supervision", {"mode": "listen"}),
    ("put", f"/api/calls/{SID}/supervision", {"mode": "listen"}),
    ("get", "/api/calls/live", None),
    ("get", "/supervision/live", None),
])
def test_agents_cannot_listen_in(client, services, alex, method, path, body):
    connected(services, alex)
    response = getattr(client, method)(path, json=body, headers=bearer(services, alex))
    assert response.status_code == 403
    refusal = "your role (agent) may not do this"
    if path.startswith("/api/"):
        assert response.json == {"error": refusal}
    else:
        assert response.get_data(as_text=True) == refusal


@pytest.mark.parametrize(("method", "path"), [
    ("post", f"/api/calls/{SID}/help"), ("get", "/api/help/alerts"),
    ("post", f"/api/calls/{SID}/supervision"), ("get", "/api/calls/live"),
])
def test_every_new_route_needs_a_sign_in(client, method, path):
    assert getattr(client, method)(path).status_code == 401


def test_managers_cannot_ask_for_help_as_they_take_no_calls(client, services, staff):
    response = ask(client, services, staff["manager"])
    assert response.status_code == 403


def test_supervisors_cannot_change_the_register(client, services, sam):
    headers = signed_in(client, sam.email)
    response = client.get("/workspace/register/new", headers=headers)
    assert response.status_code == 403


# --- listen, coach, barge ----------------------------------------------------------------------


def sent_params(rest_http) -> dict[str, list[str]]:
    [sent] = rest_http.requests
    return sent.params


@uses_twilio
def test_a_supervisor_listens_muted_and_it_is_logged(client, services, alex, sam, prism):
    connected(services, alex)
    response = client.post(f"/api/calls/{SID}/supervision", json={"mode": "listen"},
                           headers=bearer(services, sam))
    assert response.status_code == 200, response.json
    prism.assert_all_accepted()
    [sent] = prism.requests
    assert sent.path.endswith(f"/Conferences/{CONFERENCE}/Participants.json")
    assert sent.params["To"] == ["client:sam"]
    assert (sent.params["Muted"], sent.params["Coaching"]) == (["true"], ["false"])
    leg = response.json["leg_sid"]
    assert response.json == {"call_sid": SID, "mode": "listen", "leg_sid": leg,
                             "at": "2026-12-01T10:00:00+00:00",
                             "text": "You are listening (muted; nobody hears you)"}
    [joined] = logged(services, "supervisor_joined")
    assert joined.detail == {"staff_id": sam.id, "staff_email": sam.email, "via": "token",
                             "mode": "listen", "leg_sid": leg}
    assert [(s.staff_id, s.mode.value) for s in Supervisors(services.redis).on_call(SID)] == [
        (sam.id, "listen")]


@uses_twilio
def test_joining_from_the_alert_answers_it(client, services, alex, sam, prism):
    connected(services, alex)
    ask(client, services, alex)
    client.post(f"/api/calls/{SID}/supervision", json={"mode": "coach"},
                headers=bearer(services, sam))
    assert [e.detail["staff_id"] for e in logged(services, "help_answered")] == [sam.id]
    params = sent_params(prism)
    assert (params["Coaching"], params["CallSidToCoach"]) == (["true"], [AGENT_LEG])


@uses_twilio
def test_a_supervisor_switches_from_listening_to_coaching_to_the_conversation(
        client, services, alex, sam, prism):
    connected(services, alex)
    leg = client.post(f"/api/calls/{SID}/supervision", json={"mode": "listen"},
                      headers=bearer(services, sam)).json["leg_sid"]
    coach = client.put(f"/api/calls/{SID}/supervision", json={"mode": "coach"},
                       headers=bearer(services, sam))
    assert coach.status_code == 200, coach.json
    assert coach.json["text"] == "You are coaching (only the agent hears you)"
    barge = client.put(f"/api/calls/{SID}/supervision", json={"mode": "barge"},
                       headers=bearer(services, sam))
    assert barge.status_code == 200, barge.json
    prism.assert_all_accepted()
    updates = [r for r in prism.requests if r.path.endswith(f"/Participants/{leg}.json")]
    assert [r.params for r in updates] == [
        {"Muted": ["false"], "Coaching": ["true"], "CallSidToCoach": [AGENT_LEG]},
        {"Muted": ["false"], "Coaching": ["false"]},
    ]
    assert [(e.detail["from_mode"], e.detail["mode"])
            for e in logged(services, "supervision_changed")] == [
        ("listen", "coach"), ("coach", "barge")]


def test_switching_before_joining_is_refused_plainly(client, services, alex, sam):
    connected(services, alex)
    response = client.put(f"/api/calls/{SID}/supervision", json={"mode": "coach"},
                          headers=bearer(services, sam))
    assert response.status_code == 409
    assert response.json == {"error": SupervisionRefusal.NOT_JOINED.value}


@pytest.mark.parametrize("body", [{}, {"mode": "shout"}, {"mode": 3}])
def test_a_bad_mode_is_422_naming_the_field_and_the_choices(client, services, alex, sam, body):
    connected(services, alex)
    response = client.post(f"/api/calls/{SID}/supervision", json=body,
                           headers=bearer(services, sam))
    assert response.status_code == 422
    assert response.json == {
        "field": "mode",
        "error": "choose how to be on the call (mode): one of listen (listen), "
                 "coach (coach the agent), barge (join the conversation)"}


def test_a_call_nobody_has_answered_cannot_be_joined(client, services, alex, sam):
    set_live(services.redis, SID, {"state": "waiting", "from": CALLER, "withheld": "0",
                                   "started": "2026-12-01T10:00:00+00:00"})
    response = client.post(f"/api/calls/{SID}/supervision", json={"mode": "listen"},
                           headers=bearer(services, sam))
    assert response.status_code == 409
    assert response.json == {"error": SupervisionRefusal.NOT_CONNECTED.value}


# --- every live call ---------------------------------------------------------------------------


@uses_twilio
def test_supervisors_see_every_live_call_with_its_state_and_flags(
        client, services, staff, alex, sam, prism):
    entry_id = register_entry(services, staff["manager"])
    connected(services, alex, entry_id=str(entry_id), warned="1")
    ask(client, services, alex)
    set_live(services.redis, OTHER_SID, {"state": "waiting", "from": "+447700900456",
                                         "withheld": "0",
                                         "started": "2026-12-01T10:01:00+00:00"})
    client.post(f"/api/calls/{SID}/supervision", json={"mode": "listen"},
                headers=bearer(services, staff["manager"]))
    response = client.get("/api/calls/live", headers=bearer(services, sam))
    assert response.status_code == 200
    assert response.json["calls"] == [
        {"call_sid": SID, "state": "connected", "state_text": "Connected",
         "caller": "07700 900123 (register entry QL-2)", "started_at_text": "10am",
         "agent": "Agent", "on_register": True, "warned": True, "help_requested": False,
         "help_answered": True,
         "supervisors": ["Manager is listening (muted; nobody hears them)"],
         "my_mode": None, "joinable": True},
        {"call_sid": OTHER_SID, "state": "waiting", "state_text": "Waiting for an agent",
         "caller": "07700 900456", "started_at_text": "10:01am", "agent": "",
         "on_register": False, "warned": False, "help_requested": False,
         "help_answered": False, "supervisors": [], "my_mode": None, "joinable": False},
    ]


# --- the supervisor's leg ends (Twilio's signed status callback) -------------------------------


def supervisor_status(client, staff_id: int, status: str, signed: bool = True):
    path, query = "/twilio/voice/supervisor/status", f"call={SID}&staff={staff_id}"
    form = {"CallSid": LEG, "CallStatus": status, "AccountSid": "AC" + "0" * 32}
    signature = sign(f"{BASE}{path}?{query}", form) if signed else "bad"
    return client.post(f"{path}?{query}", data=form, headers={"X-Twilio-Signature": signature})


@pytest.mark.parametrize(("status", "answered", "words"), [
    ("completed", True, ("Supervisor left the call", "")),
    ("no-answer", False, ("Supervisor left the call", "they did not answer")),
])
def test_the_supervisors_leg_ending_is_logged_and_forgotten(client, services, alex, sam,
                                                            status, answered, words):
    Supervisors(services.redis).joined(SID, SupervisorLeg(sam.id, LEG, SupervisionMode.LISTEN))
    assert supervisor_status(client, sam.id, "in-progress").status_code == 204
    assert Supervisors(services.redis).leg_of(SID, sam.id) is not None, "not over yet"
    assert supervisor_status(client, sam.id, status).status_code == 204
    assert Supervisors(services.redis).on_call(SID) == []
    [left] = logged(services, "supervisor_left")
    assert left.detail == {"staff_id": sam.id, "status": status, "answered": answered}
    step = describe(TimelineEvent(left.kind, left.at, left.detail), {sam.id: "Supervisor"}, {})
    assert (step.title, step.text) == words


def test_an_unsigned_supervisor_status_is_refused_and_changes_nothing(client, services, sam):
    Supervisors(services.redis).joined(SID, SupervisorLeg(sam.id, LEG, SupervisionMode.LISTEN))
    assert supervisor_status(client, sam.id, "completed", signed=False).status_code == 403
    assert Supervisors(services.redis).leg_of(SID, sam.id) is not None
    assert logged(services, "supervisor_left") == []
