"""Away means away: a designated contact who is Away or signed out is not rung, the fallback is,
and they stay Away (issue item 13). Whole calls, as in test_scenarios.py."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest

from simulator.emulator import SimulatedCall
from store.agent_pool import AgentPool, Availability
from tests.calls.test_scenarios import POI, restrict
from tests.console.test_api import bearer


def past_the_emergency_offer(call: SimulatedCall) -> None:
    """A restricted caller first hears the emergency offer (test_emergency_everywhere.py); this
    one presses nothing and goes on waiting, or on to the voicemail tone."""
    if call.waiting_for == "gather":
        call.silence()


@pytest.mark.parametrize("absent", ["set away", "signed out"])
def test_an_away_designated_contact_is_skipped_for_the_fallback_and_stays_away(
        driver, services, clock, staff, absent):
    alex, jo = staff["agent"], staff["agent2"]
    restrict(services, clock, designated_contact="alex@example.org", fallback="jo@example.org")
    if absent == "set away":
        driver.set_available(alex)
        AgentPool(services.worker_redis).set_availability(alex.id, Availability.AWAY)
    driver.set_available(jo)

    call = driver.call(POI)
    past_the_emergency_offer(call)
    (leg,) = call.staff_legs
    assert leg.to_number == "client:jo" and leg.query["leg"] == "fallback"
    assert [r.params["To"] for r in driver.calls_created()] == [["client:jo"]]
    leg.answer()
    leg.hang_up()

    assert call.over
    row, events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id) == ("designated_contact", jo.id)
    counts = Counter(e.kind for e in events)
    assert (counts["designated_contact_away"], counts["dialled"], counts["no_answer"]) == (1, 1, 0)
    (skipped,) = [e for e in events if e.kind == "designated_contact_away"]
    assert skipped.detail == {"staff_id": alex.id, "leg": "designated"}
    assert driver.availability(alex) is Availability.AWAY, "still away after the call"
    assert driver.availability(jo) is Availability.AVAILABLE

    answer = driver.client.get("/api/calls/current", headers=bearer(services, alex))
    assert answer.json == {"call": None,
                           "passed_on": {"call_sid": call.sid, "went_to": "fallback"}}


def test_an_away_designated_contact_without_a_fallback_sends_the_caller_to_voicemail(
        driver, services, clock, staff):
    alex = staff["agent"]
    restrict(services, clock, designated_contact="alex@example.org")
    call = driver.call(POI)  # alex never signed in
    past_the_emergency_offer(call)

    assert driver.calls_created() == [] and call.staff_legs == []
    (redirect,) = driver.call_updates(call.sid)
    assert urlsplit(redirect.params["Url"][0]).path == "/twilio/voice/voicemail"
    past_the_emergency_offer(call)
    assert call.waiting_for == "record"
    call.leave_message(15)
    assert call.over
    assert driver.availability(alex) is Availability.AWAY
    answer = driver.client.get("/api/calls/current", headers=bearer(services, alex))
    assert answer.json["passed_on"] == {"call_sid": call.sid, "went_to": "voicemail"}


def test_a_designated_contact_who_did_not_answer_is_told_the_call_went_to_the_fallback(
        driver, services, clock, staff):
    alex, jo = staff["agent"], staff["agent2"]
    restrict(services, clock, designated_contact="alex@example.org", fallback="jo@example.org")
    driver.set_available(alex)
    driver.set_available(jo)
    call = driver.call(POI)
    past_the_emergency_offer(call)
    (first,) = call.staff_legs
    assert first.to_number == "client:alex"
    first.decline("no-answer")
    assert call.staff_legs[1].to_number == "client:jo"

    answer = driver.client.get("/api/calls/current", headers=bearer(services, alex))
    assert answer.json == {"call": None,
                           "passed_on": {"call_sid": call.sid, "went_to": "fallback"}}
