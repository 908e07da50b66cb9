"""The emergency-repair option is never taken away (policy 4.1, issue item 12): whole calls, as in
test_scenarios.py, for every restricted path; each caller presses 1 and reaches the emergency line.

A caller waiting in a conference cannot press keys (Twilio refuses <Gather> in a waitUrl, error
13238), so a restricted caller put through hears the offer before joining, and again before the
voicemail tone if nobody answers.
"""

from __future__ import annotations

from collections import Counter

import pytest

from callflow.decision import EMERGENCY_OFFER
from simulator.emulator import SimulatedCall
from store.agent_pool import Availability
from tests.calls.test_scenarios import EMERGENCY_LINE, LONDON_TODAY, OPEN, POI, restrict
from tests.support.call_driver import CallDriver

ALEX, JO = "alex@example.org", "jo@example.org"  # staff["agent"], staff["agent2"]
PATHS = {
    "written only": {"written_only": "yes"},
    "outside a window": {"call_windows": "Thu 10:00-12:00"},  # OPEN is a Tuesday, 10:00
    "within a window": {"call_windows": "Tue 09:00-12:00"},
    "designated contact": {"designated_contact": ALEX},
    "designated contact, fallback": {"designated_contact": ALEX, "fallback": JO},
}
PUT_THROUGH = ["designated contact", "designated contact, fallback", "within a window"]


def start(driver: CallDriver, services, clock, staff, path: str) -> SimulatedCall:
    """Both agents available, the caller restricted as the path says, and their call placed."""
    driver.set_available(staff["agent"])
    driver.set_available(staff["agent2"])
    restrict(services, clock, **PATHS[path])
    return driver.call(POI)


@pytest.fixture
def unconfigured(settings, services, staff, twilio_rest, clock, more_services):
    """A driver whose service has no emergency line (CALLFLOW_EMERGENCY_NUMBER empty)."""
    clock.set(OPEN)
    off = more_services(settings.with_overrides(emergency_number=""))
    off.register.rebuild_cache(LONDON_TODAY)
    running = CallDriver(off, twilio_rest, clock)
    yield running
    running.close()


def offered(call: SimulatedCall) -> int:
    """How many times the caller heard the emergency offer."""
    return call.said().count(EMERGENCY_OFFER)


def cancelled(driver: CallDriver) -> int:
    """How many ringing staff legs the workers asked Twilio to stop."""
    return sum(1 for r in driver.rest if r.params.get("Status") == ["canceled"])


def assert_reaches_the_emergency_line(driver: CallDriver, call: SimulatedCall, staff) -> None:
    """After pressing 1: the emergency line rings, nobody else is rung, the log says emergency."""
    assert call.waiting_for == "dial" and call.transcript[-1] == f"dial: {EMERGENCY_LINE}"
    created = len(driver.calls_created())
    call.finish_dial("answered", duration_seconds=120)
    assert call.over and call.transcript[-1] == "hangup"
    row, events = driver.call_log(call.sid)
    assert row.emergency and row.agent_id is None
    counts = Counter(e.kind for e in events)
    assert (counts["emergency"], counts["emergency_ended"], counts["connected"]) == (1, 1, 0)
    assert len(driver.calls_created()) == created, "nobody was dialled after the key press"
    for member in (staff["agent"], staff["agent2"]):
        assert driver.availability(member) is Availability.AVAILABLE, member.email


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_restricted_caller_who_presses_1_at_the_first_offer_reaches_the_emergency_line(
        driver, services, clock, staff, path):
    call = start(driver, services, clock, staff, path)
    assert call.waiting_for == "gather" and offered(call) == 1
    if path in PUT_THROUGH:
        assert len([leg for leg in call.staff_legs if leg.ringing]) == 1, "already rung"
    call.press("1")
    # The phone ringing for them is stopped. (Twilio's mock answers every Calls.create with
    # the same example sid, so the emulator cannot match the cancel to its leg: count it.)
    assert cancelled(driver) == (1 if path in PUT_THROUGH else 0)
    assert_reaches_the_emergency_line(driver, call, staff)


@pytest.mark.parametrize("path", PUT_THROUGH)
def test_a_restricted_caller_nobody_answers_is_offered_it_again_before_the_voicemail_tone(
        driver, services, clock, staff, path):
    call = start(driver, services, clock, staff, path)
    call.silence()
    assert call.waiting_for == "conference", "no key: they wait for a member of staff"
    rung = []
    while ringing := [leg for leg in call.staff_legs if leg.ringing]:
        rung.append(ringing[0].to_number)
        ringing[0].decline("no-answer")
    if call.waiting_for == "conference":  # a pool caller waits until the maximum wait
        driver.run_scheduled()
    assert rung == {"designated contact": ["client:alex"],
                    "designated contact, fallback": ["client:alex", "client:jo"],
                    "within a window": ["client:alex", "client:jo"]}[path]
    assert call.waiting_for == "gather" and offered(call) == 2
    assert call.said()[-2:] == ["Sorry, nobody can take your call just now.", EMERGENCY_OFFER]
    for member in (staff["agent"], staff["agent2"]):  # a missed pool call leaves an agent away
        driver.set_available(member)
    call.press("1")
    assert_reaches_the_emergency_line(driver, call, staff)


@pytest.mark.parametrize("answer", ["silence", "2"])
def test_a_caller_who_does_not_press_1_at_the_voicemail_offer_leaves_a_message(
        driver, services, clock, staff, answer):
    call = start(driver, services, clock, staff, "designated contact")
    call.silence()
    (leg,) = call.staff_legs
    leg.decline("no-answer")
    if answer == "silence":
        call.silence()
    else:
        call.press(answer)
    assert call.waiting_for == "record" and call.transcript[-1] == "beep"
    assert call.said()[-1].startswith("Please leave a message after the tone")
    call.leave_message(20)
    row, _events = driver.call_log(call.sid)
    assert (row.voicemail, row.emergency) == (True, False)


@pytest.mark.parametrize("answer", ["silence", "2"])
def test_a_designated_contact_who_answers_during_the_offer_is_connected_after_it(
        driver, services, clock, staff, answer):
    call = start(driver, services, clock, staff, "designated contact")
    (leg,) = call.staff_legs
    leg.answer()  # while the caller still hears the offer
    if answer == "silence":
        call.silence()
    else:
        call.press(answer)
    assert call.conference == call.sid and "connected: client:alex" in call.transcript
    leg.hang_up()
    assert call.over
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id, row.emergency) == ("designated_contact",
                                                           staff["agent"].id, False)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_with_no_emergency_line_configured_nothing_offers_it(unconfigured, clock, staff, path):
    driver = unconfigured
    call = start(driver, driver.services, clock, staff, path)
    if path in PUT_THROUGH:
        assert call.waiting_for == "conference"
        while ringing := [leg for leg in call.staff_legs if leg.ringing]:
            ringing[0].decline("no-answer")
        if call.waiting_for == "conference":
            driver.run_scheduled()
        assert call.waiting_for == "record"
        call.leave_message(10)
    else:
        assert call.waiting_for is None and call.over
    assert offered(call) == 0
    assert not any(verb.tag == "Gather" for _url, root in call.documents for verb in root)
    assert not any("emergency" in said for said in call.said())
