"""The phone simulator's engine and its fake of Twilio's REST API, on Flask's test client."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from simulator import runtime
from simulator.runtime import (
    INBOX_KEY,
    LOCK_KEY,
    STATE_KEY,
    Simulator,
    new_sim_id,
    transcript_view,
)
from webhooks.announcements import WARNING_PATH

ACCOUNT = "AC" + "0" * 32
REST = f"/simulator/twilio/2010-04-01/Accounts/{ACCOUNT}"


@pytest.fixture
def engine(app, services, monkeypatch) -> Simulator:
    """The simulator, its webhooks posted (signed) through a test client of the app."""
    client = app.test_client()
    base = services.settings.public_base_url

    def post(url: str, params: dict[str, str], headers: dict[str, str]):
        response = client.post(url.removeprefix(base), data=params, headers=headers)
        return response.status_code, response.content_type or "", response.get_data(as_text=True)

    monkeypatch.setattr(runtime, "_transport", post)
    return Simulator(services)


def auth(token: str = "test-auth-token", account: str = ACCOUNT) -> dict[str, str]:
    encoded = base64.b64encode(f"{account}:{token}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def settle(engine: Simulator, sim: str, until: Callable[[dict], bool], timeout: float = 10.0):
    """Wait for the call's background thread to finish and its view to say `until`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        idle = not engine.redis.llen(INBOX_KEY.format(sim=sim)) and not engine.redis.exists(
            LOCK_KEY.format(sim=sim))
        view = engine.view(sim)
        if idle and view is not None and until(view):
            return view
        time.sleep(0.05)
    raise AssertionError(f"the simulated call did not settle: {engine.view(sim)}")


def test_the_rest_api_wants_twilios_basic_auth(app):
    client = app.test_client()
    refused = client.post(f"{REST}/Calls.json", data={"To": "client:alex"})
    assert refused.status_code == 401
    assert refused.json["code"] == 20003
    wrong = client.post(f"{REST}/Calls.json", data={"To": "client:alex"}, headers=auth("nope"))
    assert wrong.status_code == 401
    other = "AC" + "1" * 32
    elsewhere = client.post(f"/simulator/twilio/2010-04-01/Accounts/{other}/Calls.json",
                            data={"To": "client:alex"}, headers=auth(account=other))
    assert elsewhere.status_code == 401


def test_unknown_calls_and_participants_are_twilios_404(app):
    client = app.test_client()
    unknown = "CA" + "f" * 32
    response = client.post(f"{REST}/Calls/{unknown}.json", data={"Status": "completed"},
                           headers=auth())
    assert response.status_code == 404 and response.json["code"] == 20404
    participant = client.post(f"{REST}/Conferences/CF{'e' * 32}/Participants/{unknown}.json",
                              data={"AnnounceUrl": "https://callflow.test/x"}, headers=auth())
    assert participant.status_code == 404


def test_a_call_rings_staff_takes_an_announcement_and_ends_through_the_rest_api(app, engine,
                                                                             services):
    client = app.test_client()
    base = services.settings.public_base_url
    sim = new_sim_id()
    engine.submit(sim, {"do": "place", "from": "+447700900321"})
    held = settle(engine, sim, lambda v: v["on_hold"])
    caller = held["call_sid"]
    assert any("Please hold" in entry["text"] for entry in held["transcript"])

    query = urlencode({"call": caller, "staff": 3, "leg": "pool", "attempt": 0})
    created = client.post(f"{REST}/Calls.json", headers=auth(), data={
        "To": "client:alex", "From": "+441632960000", "Url": f"{base}/twilio/voice/agent/join?"
        f"{query}", "Method": "POST", "StatusCallback": f"{base}/twilio/voice/agent/status?"
        f"{query}", "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": "20"})
    assert created.status_code == 201
    leg = created.json["sid"]
    assert created.json["status"] == "queued" and created.json["to"] == "client:alex"
    settle(engine, sim, lambda v: any(item["sid"] == leg for item in v["legs"]))
    assert engine.legs_for("client:alex") == [
        {"sid": leg, "sim": sim, "to": "client:alex", "status": "ringing", "for_call": caller,
         "staff_id": 3}]

    engine.submit(sim, {"do": "leg", "leg": leg, "act": "answer"})
    connected = settle(engine, sim, lambda v: v["connected"])
    conference = next(iter(connected["conferences"]))

    announced = client.post(f"{REST}/Conferences/{conference}/Participants/{caller}.json",
                            headers=auth(), data={"AnnounceUrl": f"{base}{WARNING_PATH}?"
                                                  f"{urlencode({'call': caller})}",
                                                  "AnnounceMethod": "POST"})
    assert announced.status_code == 200 and announced.json["call_sid"] == caller
    warned = settle(engine, sim, lambda v: any(e.get("note", "").startswith("announcement")
                                               for e in v["transcript"]))
    assert "unacceptable" in warned["transcript"][-1]["text"]

    ended = client.post(f"{REST}/Calls/{caller}.json", headers=auth(),
                        data={"Status": "completed"})
    assert ended.status_code == 200 and ended.json["status"] == "completed"
    over = settle(engine, sim, lambda v: v["over"])
    assert over["problems"] == []
    assert [entry["outcome"] for entry in over["rest"]] == [
        "ringing client:alex", f"announced to {caller}", f"ended {caller}"]
    assert engine.legs_for("client:alex") == []  # the staff leg ended with the conference

    too_late = client.post(f"{REST}/Calls/{caller}.json", headers=auth(),
                           data={"Url": f"{base}/twilio/voice/voicemail"})
    assert too_late.status_code == 400 and too_late.json["code"] == 21220


def test_an_unanswered_key_press_times_out_as_twilio_does(engine, clock):
    clock.set(datetime(2026, 12, 5, 10, 0, tzinfo=UTC))  # a Saturday: closed, a message
    sim = new_sim_id()
    engine.submit(sim, {"do": "place", "from": "+447700900321"})
    view = settle(engine, sim, lambda v: v["waiting_for"] == "gather")
    assert view["gather_due"] > time.time()
    engine.run_due_timers()
    assert settle(engine, sim, lambda v: True)["waiting_for"] == "gather"  # not yet
    engine.clock = lambda: view["gather_due"] + 1
    engine.run_due_timers()
    over = settle(engine, sim, lambda v: v["over"])
    texts = [entry["text"] for entry in over["transcript"]]
    assert texts[-3:] == ["You said nothing.", "Thank you for calling. Goodbye.",
                          "The line hung up."]


def test_a_state_that_this_service_did_not_sign_is_not_unpickled(engine, services):
    sim = new_sim_id()
    engine.submit(sim, {"do": "place", "from": "+447700900321"})
    settle(engine, sim, lambda v: v["on_hold"])
    key = STATE_KEY.format(sim=sim)
    raw = engine.redis.get(key)
    engine.redis.set(key, bytes(32) + raw[32:])
    assert engine._load(sim) is None


def test_the_transcript_reads_as_what_a_caller_hears():
    lines = ["say: Hello.", "pressed: 1", "conference: CA1 (waiting)", "announcement: Stop.",
             "hangup"]
    assert transcript_view(lines, [(5, "You hung up.")]) == [
        {"kind": "say", "text": "Hello."},
        {"kind": "you", "text": "You pressed 1."},
        {"kind": "system", "text": "On hold, waiting for a member of staff."},
        {"kind": "say", "text": "Stop.", "note": "announcement, played to you alone"},
        {"kind": "system", "text": "The line hung up."},
        {"kind": "you", "text": "You hung up."},
    ]
