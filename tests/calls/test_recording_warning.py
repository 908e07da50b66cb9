"""Issue 14 item 5, a whole call: the warning really played before End call ends the call, and
who left the conference and why is on the timeline."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from console.tokens import issue_token
from store.db import transaction
from tests.calls.test_scenarios import STRANGER
from tests.support.call_driver import CallDriver
from tests.support.web_client import client_signed_in_as

WARNING_PLAYING = "the warning is still playing to the caller: end the call once it has finished"


def bearer(services, member, now) -> dict[str, str]:
    with transaction(services.sessions) as db:
        return {"Authorization": f"Bearer {issue_token(db, member, now, 'test')}"}


def csv_row(driver: CallDriver, services, member, call_sid: str) -> dict[str, str]:
    """The call's line in the call log's CSV export, as `member` downloads it."""
    export = driver.client.get("/workspace/calls.csv",
                               headers=bearer(services, member, driver.clock.now))
    assert export.status_code == 200
    [row] = [r for r in csv.DictReader(io.StringIO(export.get_data(as_text=True)))
             if r["call_sid"] == call_sid]
    return row


def connected_call(driver: CallDriver, alex):
    driver.set_available(alex)
    call = driver.call(STRANGER)
    (leg,) = call.staff_legs
    leg.answer()
    return call, leg


def test_end_call_waits_for_the_warning_to_play_then_the_log_says_who_left_and_why(
        driver, services, staff, clock):
    alex = staff["agent"]
    call, leg = connected_call(driver, alex)
    headers = bearer(services, alex, clock.now)
    api = driver.client

    with driver.workers_stopped():  # Twilio has not played the warning yet
        warned = api.post(f"/api/calls/{call.sid}/warning", headers=headers)
        assert warned.status_code == 200 and warned.json["warning_state"] == "playing"
        early = api.post(f"/api/calls/{call.sid}/end", json={}, headers=headers)
        assert early.status_code == 409 and early.json == {"error": WARNING_PLAYING}
        shown = api.get(f"/api/calls/current?call={call.sid}", headers=headers).json["call"]
        assert (shown["warning_state"], shown["warning_state_text"]) == (
            "playing", "The warning is playing to the caller")
    # Settled: the announcement was played into the conference and Twilio said so.
    assert call.heard("announcement: ")
    shown = api.get(f"/api/calls/current?call={call.sid}", headers=headers).json["call"]
    assert (shown["warning_state"], shown["warning_state_text"]) == (
        "played", "The warning was played to the caller")

    ended = api.post(f"/api/calls/{call.sid}/end", json={}, headers=headers)
    assert ended.status_code == 200, ended.json
    driver.settle()
    assert call.over and call.heard("this call is now being ended")
    assert leg.over

    _row, events = driver.call_log(call.sid)
    kinds = [e.kind for e in events]
    assert kinds.index("warning") < kinds.index("warning_played") < kinds.index("ended_by_agent")
    assert next(e for e in events if e.kind == "ended_by_agent").detail["warning"] == "played"
    left = {e.detail["party"]: e.detail for e in events if e.kind == "left_conference"}
    assert left["caller"]["reason"] == "participant_updated_via_api"  # to the closing statement
    assert left["staff"]["reason"] == "moderator_ended_conference"
    assert left["staff"]["staff_id"] == alex.id
    assert csv_row(driver, services, staff["supervisor"], call.sid)["warning_and_recording"] == (
        "warning played at 10am; the caller left (moved out of the call by callflow (for "
        "example, to hear the closing statement)) at 10am; the member of staff left (the call "
        "ended because the other person left it) at 10am")


def test_a_warning_that_fails_to_play_keeps_the_call_until_it_is_given_again(
        driver, services, staff, clock):
    alex = staff["agent"]
    call, _leg = connected_call(driver, alex)
    headers = bearer(services, alex, clock.now)
    conference = driver.emulator.conferences[call.sid]
    # Twilio could not fetch the announcement: it says announcement-fail with its reason.
    driver.emulator._conference_event(
        conference, "announcement-fail", conference.participants[call.sid],
        AnnounceUrl=f"{driver.base_url}/twilio/voice/announce/warning?call={call.sid}",
        ReasonAnnouncementFailed="Could not fetch the announcement")
    driver.settle()
    with driver.workers_stopped():
        refused = driver.client.post(f"/api/calls/{call.sid}/end", json={}, headers=headers)
    assert refused.status_code == 409
    _row, events = driver.call_log(call.sid)
    failed = next(e for e in events if e.kind == "warning_failed")
    assert failed.detail["reason"] == "Could not fetch the announcement"
    page = client_signed_in_as(driver.app, "supervisor@example.org").get(
        f"/workspace/calls/{call.sid}").get_data(as_text=True)
    assert "Warning failed to play" in page
    assert ("the caller did not hear it; the phone system said: Could not fetch the "
            "announcement") in page


def test_a_warning_twilio_never_confirms_stops_holding_the_call_after_the_time_allowed(
        driver, services, staff, clock):
    alex = staff["agent"]
    call, _leg = connected_call(driver, alex)
    headers = bearer(services, alex, clock.now)
    allowed = services.settings.warning_confirm_seconds
    with driver.workers_stopped():  # Twilio's callback never comes in time
        assert driver.client.post(f"/api/calls/{call.sid}/warning",
                                  headers=headers).status_code == 200
        clock.set(clock.now + timedelta(seconds=allowed - 1))
        assert driver.client.post(f"/api/calls/{call.sid}/end", json={},
                                  headers=headers).status_code == 409
        clock.set(clock.now + timedelta(seconds=1))
        shown = driver.client.get(f"/api/calls/current?call={call.sid}",
                                  headers=headers).json["call"]
        assert shown["warning_state_text"] == (
            "The warning was sent, but the phone system did not confirm it played")
        ended = driver.client.post(f"/api/calls/{call.sid}/end", json={}, headers=headers)
        assert ended.status_code == 200, ended.json
    _row, events = driver.call_log(call.sid)
    assert next(e for e in events if e.kind == "ended_by_agent").detail["warning"] == (
        "unconfirmed")
