"""Issue 14 item 6, whole calls: a staff phone's voicemail never takes the caller."""

from __future__ import annotations

from collections import Counter

import pytest

from store.agent_pool import Availability
from store.db import transaction
from tests.calls.test_recording_warning import csv_row
from tests.calls.test_scenarios import POI, STRANGER, assert_once, query_of, restrict
from usecases.staff import add_staff

PHONE = "+447700900999"


@pytest.fixture
def phone_agent(services, staff, clock):
    """An agent who takes calls on a phone, not in the browser."""
    with transaction(services.sessions) as session:
        return add_staff(session, email="kim@example.org", name="Kim", role="agent",
                         now=clock.now, phone_number=PHONE)


def test_an_agents_voicemail_is_no_answer_and_the_next_agent_takes_the_caller(
        driver, staff, phone_agent):
    jo = staff["agent2"]
    driver.set_available(phone_agent)  # longest idle: rung first
    driver.set_available(jo)
    call = driver.call(STRANGER)

    (to_phone,) = driver.calls_created()
    # Every REST request is checked against Twilio's OpenAPI spec by the Prism mock.
    assert to_phone.accepted and to_phone.params["To"] == [PHONE]
    assert to_phone.params["MachineDetection"] == ["Enable"]
    (kims,) = call.staff_legs
    kims.answer_by_machine("machine_start")

    assert kims.over and kims.transcript[-1] == "hangup", "the machine is hung up on"
    assert not call.heard("connected: " + PHONE), "the caller never met the voicemail"
    assert driver.availability(phone_agent) is Availability.AWAY
    to_browser = driver.calls_created()[1]
    assert to_browser.accepted and to_browser.params["To"] == ["client:jo"]
    assert "MachineDetection" not in to_browser.params, "a browser has no voicemail"
    assert query_of(to_browser.params["Url"][0])["attempt"] == "1"

    jos = call.staff_legs[1]
    jos.answer()
    assert "connected: client:jo" in call.transcript
    jos.hang_up()

    row, events = driver.call_log(call.sid)
    assert row.agent_id == jo.id
    assert_once(Counter(e.kind for e in events), "answering_machine", "connected")
    machine = next(e for e in events if e.kind == "answering_machine")
    assert machine.detail == {"staff_id": phone_agent.id, "leg": "pool",
                              "answered_by": "machine_start"}
    missed = next(e for e in events if e.kind == "no_answer")
    assert missed.detail == {"staff_id": phone_agent.id, "status": "machine", "leg": "pool",
                             "next": "pool"}
    assert not [e for e in events if e.kind == "agent_left"
                and e.detail["staff_id"] == phone_agent.id]
    said = csv_row(driver, driver.services, staff["supervisor"], call.sid)
    assert said["warning_and_recording"].startswith(
        "a voicemail answered, treated as no answer at 10am; "), said


def test_a_person_answering_a_phone_is_put_through(driver, staff, phone_agent):
    driver.set_available(phone_agent)
    call = driver.call(STRANGER)
    (leg,) = call.staff_legs
    leg.answer()
    assert f"connected: {PHONE}" in call.transcript
    leg.hang_up()
    row, events = driver.call_log(call.sid)
    assert row.agent_id == phone_agent.id
    assert "answering_machine" not in {e.kind for e in events}


def test_a_designated_contacts_voicemail_passes_the_caller_to_the_fallback(
        driver, services, clock, staff, phone_agent):
    jo = staff["agent2"]
    restrict(services, clock, designated_contact="kim@example.org", fallback="jo@example.org")
    driver.set_available(phone_agent)
    driver.set_available(jo)
    call = driver.call(POI)
    call.silence()  # no key at the emergency offer: they wait

    (kims,) = call.staff_legs
    assert kims.query["leg"] == "designated" and kims.to_number == PHONE
    assert driver.calls_created()[0].params["MachineDetection"] == ["Enable"]
    kims.answer_by_machine("machine_end_beep")

    fallback = call.staff_legs[1]
    assert fallback.to_number == "client:jo" and fallback.query["leg"] == "fallback"
    fallback.answer()
    assert "connected: client:jo" in call.transcript
    fallback.hang_up()
    row, events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id) == ("designated_contact", jo.id)
    missed = next(e for e in events if e.kind == "no_answer")
    assert missed.detail == {"staff_id": phone_agent.id, "status": "machine",
                             "leg": "designated", "next": "dial"}
    assert driver.availability(phone_agent) is Availability.AVAILABLE, "not away: not a miss"
