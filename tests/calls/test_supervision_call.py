"""A whole call with a supervisor: the agent asks for help, a supervisor answers, listens, coaches
and joins the conversation, through the real app, workers, Prism and the simulator (issue 14)."""

from __future__ import annotations

import csv
import io
from collections import Counter

from callflow.supervision import SupervisionMode
from console.tokens import issue_token
from console.workspace.timeline import describe
from simulator.emulator import ParticipantLeg
from store.call_queries import TimelineEvent
from store.db import transaction
from store.help_alerts import SupervisorLeg, Supervisors
from store.live_call import read_live, set_live
from tests.calls.test_scenarios import STRANGER
from tests.conftest import NOW


def bearer(services, member) -> dict[str, str]:
    with transaction(services.sessions) as db:
        return {"Authorization": f"Bearer {issue_token(db, member, NOW, 'test')}"}


def test_a_supervisor_answers_a_call_for_help_listens_coaches_and_joins_in(driver, services,
                                                                          staff):
    alex, sam = staff["agent"], staff["supervisor"]
    driver.set_available(alex)
    call = driver.call(STRANGER)
    (agent,) = call.staff_legs
    # Prism answers every create with one example CallSid; the app learns the emulator's own,
    # as it would learn Twilio's.
    set_live(services.redis, call.sid, {"ringing_leg_sid": agent.sid})
    agent.answer()
    assert read_live(services.redis, call.sid).staff_id == alex.id

    api = driver.client
    asked = api.post(f"/api/calls/{call.sid}/help", headers=bearer(services, alex))
    assert asked.status_code == 200, asked.json
    [alert] = api.get("/api/help/alerts", headers=bearer(services, sam)).json["alerts"]
    assert alert["text"] == ("Agent needs help on a call with 07700 900555. "
                             "The caller is not on the register.")

    joined = api.post(f"/api/calls/{call.sid}/supervision", json={"mode": "listen"},
                      headers=bearer(services, sam))
    assert joined.status_code == 200, joined.json
    driver.settle()
    [supervisor] = [leg for leg in driver.emulator.staff_legs if isinstance(leg, ParticipantLeg)]
    assert (supervisor.to_number, supervisor.for_call, supervisor.ringing) == (
        "client:sam", call.sid, True)
    Supervisors(services.redis).joined(call.sid, SupervisorLeg(sam.id, supervisor.sid,
                                                               SupervisionMode.LISTEN))
    supervisor.answer()
    assert supervisor.conference == call.sid
    assert "connected: client:sam" in call.transcript and "connected: client:sam" in \
        agent.transcript

    supervisor.speak("Listening only")
    assert not call.heard("Listening only") and not agent.heard("Listening only")

    coach = api.put(f"/api/calls/{call.sid}/supervision", json={"mode": "coach"},
                    headers=bearer(services, sam))
    assert coach.status_code == 200, coach.json
    driver.settle()
    supervisor.speak("Offer a call back")
    assert agent.heard("heard client:sam: Offer a call back")
    assert not call.heard("Offer a call back"), "the caller never hears the coach"

    barge = api.put(f"/api/calls/{call.sid}/supervision", json={"mode": "barge"},
                    headers=bearer(services, sam))
    assert barge.status_code == 200, barge.json
    driver.settle()
    supervisor.speak("This is the supervisor")
    assert call.heard("heard client:sam: This is the supervisor")
    assert agent.heard("heard client:sam: This is the supervisor")

    agent.hang_up()
    assert call.over and supervisor.over, "the supervisor's leg ends with the conference"
    driver.http.assert_all_accepted()
    assert Supervisors(services.redis).on_call(call.sid) == [], "their status callback came"

    _row, events = driver.call_log(call.sid)
    counts = Counter(e.kind for e in events)
    assert {k: counts[k] for k in ("help_requested", "help_answered", "supervisor_joined",
                                   "supervision_changed", "supervisor_left")} == {
        "help_requested": 1, "help_answered": 1, "supervisor_joined": 1,
        "supervision_changed": 2, "supervisor_left": 1}
    names = {alex.id: "Alex", sam.id: "Sam"}
    steps = [describe(TimelineEvent(e.kind, e.at, e.detail), names, {})
             for e in events if e.kind.startswith(("help", "supervis"))]
    assert [(s.title, s.text) for s in steps] == [
        ("Help requested by Alex", "every available supervisor was alerted"),
        ("Help answered by Sam", ""),
        ("Sam joined the call", "now listening (muted; nobody hears them)"),
        ("Sam switched how they are on the call", "now coaching (only the agent hears them)"),
        ("Sam switched how they are on the call",
         "now in the conversation (the caller and the agent hear them)"),
        ("Sam left the call", ""),
    ]

    export = api.get("/workspace/calls.csv", headers=bearer(services, sam))
    assert export.status_code == 200
    [row] = [r for r in csv.DictReader(io.StringIO(export.get_data(as_text=True)))
             if r["call_sid"] == call.sid]
    assert row["supervision"] == (
        "help asked for by Agent at 10am; help answered by Supervisor at 10am; "
        "Supervisor listening from 10am; Supervisor coaching from 10am; "
        "Supervisor in the conversation from 10am; Supervisor left at 10am")
