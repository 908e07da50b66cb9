"""Whole calls, one per row of the decision table: signed webhooks, real Redis, a real database,
real RQ workers, and Twilio's REST API checked against its OpenAPI spec (Prism)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from callflow.decision import EMERGENCY_OFFER
from callflow.register import parse_entry
from config.centre import bank_holidays
from config.settings import EventSpool
from simulator.emulator import TwilioEmulator
from store import twilio_rest as rest_api
from store.agent_pool import Availability
from store.call_events import STREAM_KEY, drain_spool
from store.embedded_redis import EmbeddedRedis
from store.live_call import read_live
from tests.support.call_driver import CallDriver
from workers import pump

LONDON_TODAY = date(2026, 12, 1)
OPEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday in GMT
STRANGER = "+447700900555"
POI = "+447700900123"
EMERGENCY_LINE = "+441632960999"
HOLD_GREETING = "Thank you for calling. Please hold while we connect you."
ENTRY = {
    "customer_ref": "QL-1",
    "name": "Pat Example",
    "phone_numbers": "07700 900123",
    "categories": "aggressive_abusive",
    "reason": "Abuse of staff",
    "decided_by": "manager@example.org",
    "decided_on": "2025-12-15",
    "starts_on": "2026-01-01",
    "ends_on": "2027-12-31",
    "evidence": "written: call notes of 10 December",
    "no_warning_reason": "threats to staff",
}
CORE_EVENTS = ("received", "lookup", "decision")


def restrict(services, clock, **row: str) -> int:
    """Put the person of interest on the register (as a manager); returns the entry id."""
    fields, errors = parse_entry({**ENTRY, **row})
    assert not errors, errors
    today = clock.now.astimezone(services.settings.tz).date()
    return services.register.save(fields, "manager@example.org", clock.now, today).entry_id


def texts(element: ET.Element, path: str) -> list[str]:
    """The text of every element at an ElementTree XPath."""
    return [" ".join("".join(found.itertext()).split()) for found in element.findall(path)]


def query_of(url: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def assert_connect_twiml(root: ET.Element, call_sid: str) -> None:
    """The caller hears the hold greeting and waits alone in a conference named after the call."""
    assert texts(root, "./Say") == [HOLD_GREETING]
    conference = root.find("./Dial/Conference")
    assert conference is not None and conference.text == call_sid
    assert conference.get("startConferenceOnEnter") == "false"
    assert conference.get("endConferenceOnExit") == "true"
    assert urlsplit(conference.get("waitUrl")).path == "/twilio/voice/hold"
    assert set(conference.get("statusCallbackEvent").split()) >= {"join", "leave", "start", "end"}


def assert_message_twiml(root: ET.Element, *sentences: str) -> list[str]:
    """A message inside a one-key Gather that ends with the emergency offer, then goodbye."""
    gather = root.find("./Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert urlsplit(gather.get("action")).path == "/twilio/voice/menu"
    said = texts(gather, "./Say")
    assert said[-1] == EMERGENCY_OFFER
    for sentence in sentences:
        assert any(sentence in spoken for spoken in said), (sentence, said)
    assert texts(root, "./Say") == ["Thank you for calling. Goodbye."]
    assert root.find("./Hangup") is not None
    return said


def assert_once(counts: Counter[str], *kinds: str) -> None:
    assert {kind: counts[kind] for kind in kinds} == dict.fromkeys(kinds, 1), counts


# -- not on the register ----------------------------------------------------------------------


def test_a_caller_not_on_the_register_is_connected_to_an_available_agent(driver, staff, clock):
    alex = staff["agent"]
    driver.set_available(alex)
    call = driver.call(STRANGER)

    assert_connect_twiml(call.document("/incoming"), call.sid)
    assert call.said()[0] == HOLD_GREETING
    assert call.waiting_for == "conference" and call.conference == call.sid
    assert f"conference: {call.sid} (waiting)" in call.transcript
    assert call.heard("Thank you for waiting"), "the wait music was fetched and played"

    (dialled,) = driver.calls_created()
    assert dialled.accepted and dialled.params["To"] == ["client:alex"]
    join = query_of(dialled.params["Url"][0])
    assert (join["call"], join["staff"]) == (call.sid, str(alex.id))
    assert query_of(dialled.params["StatusCallback"][0])["call"] == call.sid
    assert driver.availability(alex) is Availability.BUSY

    (leg,) = call.staff_legs
    leg.answer()
    assert leg.document("/agent/join").find("./Dial/Conference").text == call.sid
    assert "connected: client:alex" in call.transcript
    clock.set(clock.now + timedelta(minutes=3))
    leg.hang_up()

    assert call.over and call.transcript[-2:] == [f"conference ended: {call.sid}", "hangup"]
    row, events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id, row.status) == ("centre", alex.id, "completed")
    assert row.from_number == STRANGER and not row.withheld and row.entry_id is None
    assert row.started_at == OPEN and row.duration_seconds == 180
    assert_once(Counter(e.kind for e in events), *CORE_EVENTS, "dialled", "connected", "status")
    lookup = next(e for e in events if e.kind == "lookup")
    assert lookup.detail["source"] == "cache"
    assert driver.availability(alex) is Availability.AVAILABLE, "free again after the call"


@pytest.mark.parametrize("nobody", ["none available", "the only agent does not answer"])
def test_a_caller_nobody_answers_is_sent_to_voicemail_after_the_maximum_wait(driver, staff,
                                                                            nobody):
    if nobody == "the only agent does not answer":
        driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    for leg in call.staff_legs:
        leg.decline("no-answer")
    assert call.waiting_for == "conference" and not driver.call_updates(call.sid)
    assert any("max-wait" in job for job in driver.scheduled())

    driver.run_scheduled()

    (redirect,) = driver.call_updates(call.sid)
    assert redirect.accepted
    assert urlsplit(redirect.params["Url"][0]).path == "/twilio/voice/voicemail"
    record = call.document("/voicemail").find("./Record")
    assert record is not None and record.get("finishOnKey") == "#"
    assert query_of(record.get("action"))["call"] == call.sid
    assert call.waiting_for == "record" and call.transcript[-1] == "beep"
    recording = call.leave_message(25)
    assert call.over and call.heard("Thank you, we have your message")

    driver.run_scheduled()  # later retries find the caller gone and ring nobody
    assert len(driver.call_updates(call.sid)) == 1
    row, events = driver.call_log(call.sid)
    assert (row.decision, row.voicemail, row.recording_url) == ("centre", True, recording.url)
    assert row.agent_id is None and row.status == "completed"
    assert_once(Counter(e.kind for e in events), *CORE_EVENTS, "voicemail_offered", "voicemail",
                "recording", "status")


def test_an_agent_who_does_not_answer_is_made_away_and_the_next_longest_idle_is_rung(
        driver, staff):
    alex, jo = staff["agent"], staff["agent2"]
    driver.set_available(alex)
    driver.set_available(jo)
    call = driver.call(STRANGER)

    (first,) = call.staff_legs
    assert first.to_number == "client:alex" and first.staff_id == alex.id
    first.decline("no-answer")
    assert driver.availability(alex) is Availability.AWAY

    second = call.staff_legs[1]
    assert second.to_number == "client:jo" and second.ringing
    second.answer()
    second.hang_up()

    row, events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id) == ("centre", jo.id)
    counts = Counter(e.kind for e in events)
    assert (counts["dialled"], counts["no_answer"], counts["connected"]) == (2, 1, 1)
    assert [r.params["To"] for r in driver.calls_created()] == [["client:alex"], ["client:jo"]]
    assert driver.availability(alex) is Availability.AWAY, "stays away until they say otherwise"


@pytest.mark.parametrize("withheld", ["anonymous", "restricted", "unavailable", "", "+266696687"])
def test_a_withheld_caller_is_routed_to_the_centre(driver, staff, withheld):
    driver.set_available(staff["agent"])
    call = driver.call(withheld)
    assert_connect_twiml(call.document("/incoming"), call.sid)
    (leg,) = call.staff_legs
    leg.answer()
    call.hang_up()

    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.withheld, row.from_number) == ("withheld", True, None)
    assert row.agent_id == staff["agent"].id and leg.over


# -- the person-of-interest register ----------------------------------------------------------

FORMATS = ("07700 900123", "+447700900123", "0044 7700 900123", "+44 (0)7700 900123")


@pytest.mark.parametrize(
    ("registered", "calling"),
    [(f, POI) for f in FORMATS] + [(POI, f) for f in FORMATS if f != POI],
)
def test_every_format_of_a_registered_number_is_recognised(driver, services, clock,
                                                           registered, calling):
    entry_id = restrict(services, clock, phone_numbers=registered, written_only="yes")
    call = driver.call(calling)
    assert_message_twiml(call.document("/incoming"), "contact us in writing")
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.entry_id, row.from_number) == ("written_only", entry_id, POI)


@pytest.mark.parametrize("pressed", [None, "5"])
def test_a_written_only_caller_hears_how_to_write_then_goodbye(driver, services, clock, pressed):
    restrict(services, clock, written_only="yes")
    call = driver.call(POI)
    said = assert_message_twiml(call.document("/incoming"), "contact us in writing",
                                f"You can write to us at: {services.settings.written_contact}")
    assert call.waiting_for == "gather" and call.said() == said
    if pressed is None:
        call.silence()
    else:
        call.press(pressed)
    assert call.over and call.transcript[-2:] == ["say: Thank you for calling. Goodbye.",
                                                  "hangup"]
    assert not driver.calls_created()
    row, events = driver.call_log(call.sid)
    assert (row.decision, row.emergency, row.status) == ("written_only", False, "completed")
    assert_once(Counter(e.kind for e in events), "received", "lookup", "status")
    keys = [e.event_key.removeprefix(f"{call.sid}:") for e in events if e.kind == "decision"]
    assert keys == ["decision"], "a key press does not decide the call again"
    declined = [e.event_key.removeprefix(f"{call.sid}:") for e in events
                if e.kind == "emergency_declined"]
    assert declined == ([] if pressed is None else [f"menu:{pressed}"])


def test_a_written_only_caller_who_presses_1_is_put_through_to_the_emergency_line(
        driver, services, clock):
    restrict(services, clock, written_only="yes")
    call = driver.call(POI)
    call.press("1")

    dial = call.document("/menu").find("./Dial")
    assert dial is not None and dial.text == EMERGENCY_LINE
    assert urlsplit(dial.get("action")).path == "/twilio/voice/emergency-ended"
    assert call.waiting_for == "dial" and f"dial: {EMERGENCY_LINE}" in call.transcript
    call.finish_dial("answered", duration_seconds=240)
    assert call.over and call.transcript[-1] == "hangup"

    row, events = driver.call_log(call.sid)
    assert (row.decision, row.emergency) == ("written_only", True)
    assert_once(Counter(e.kind for e in events), *CORE_EVENTS, "emergency", "emergency_ended")


def test_an_unanswered_emergency_line_takes_a_message(driver, services, clock):
    restrict(services, clock, written_only="yes")
    call = driver.call(POI)
    call.press("1")
    call.finish_dial("no-answer")
    assert call.heard("the emergency repairs line did not answer")
    assert call.waiting_for == "record"
    call.leave_message(15)
    row, _events = driver.call_log(call.sid)
    assert (row.emergency, row.voicemail) == (True, True)


@pytest.mark.parametrize(("now", "spoken"), [
    (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), "on Thursday between 10 a.m. and 12 noon"),
    (datetime(2026, 12, 2, 10, 0, tzinfo=UTC), "tomorrow between 10 a.m. and 12 noon"),
    (datetime(2026, 12, 3, 8, 30, tzinfo=UTC), "today between 10 a.m. and 12 noon"),
    (datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
     "on Thursday 10 December between 10 a.m. and 12 noon"),
])
def test_outside_the_agreed_times_the_caller_hears_when_to_call(driver, services, clock,
                                                                now, spoken):
    restrict(services, clock, call_windows="Thu 10:00-12:00")
    driver.at(now)
    call = driver.call(POI)
    said = assert_message_twiml(call.document("/incoming"), f"You can next call us {spoken}.")
    assert any(s.startswith("You can also write to us at: ") for s in said)
    call.silence()
    assert not driver.calls_created()
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.started_at) == ("outside_window", now)


def test_inside_the_agreed_times_the_caller_is_connected_to_the_pool(driver, services, clock,
                                                                    staff):
    entry_id = restrict(services, clock, call_windows="Thu 10:00-12:00")
    driver.at(datetime(2026, 12, 3, 11, 0, tzinfo=UTC))
    driver.set_available(staff["agent2"])
    call = driver.call(POI)
    assert_connect_twiml(call.document("/incoming"), call.sid)
    (leg,) = call.staff_legs
    assert leg.to_number == "client:jo"
    leg.answer()
    leg.hang_up()
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.entry_id, row.agent_id) == ("within_window", entry_id,
                                                          staff["agent2"].id)


@pytest.mark.parametrize("then", ["answers", "no answer, voicemail", "no answer, fallback"])
def test_a_designated_contact_is_dialled_directly_and_falls_back(driver, services, clock, staff,
                                                                 then):
    alex, jo = staff["agent"], staff["agent2"]
    fallback = "jo@example.org" if then == "no answer, fallback" else ""
    restrict(services, clock, designated_contact="alex@example.org", fallback=fallback)
    driver.set_available(alex)  # an Away contact is skipped (tests/calls/test_away.py)
    driver.set_available(jo)
    call = driver.call(POI)
    assert_connect_twiml(call.document("/incoming"), call.sid)
    call.silence()  # no key at the emergency offer (test_emergency_everywhere.py): they wait

    (first,) = call.staff_legs
    assert first.to_number == "client:alex" and first.query["leg"] == "designated"
    if then == "answers":
        first.answer()
        call.hang_up()
        expected_agent = alex.id
    else:
        first.decline("busy" if then == "no answer, voicemail" else "no-answer")
        expected_agent = None
        if then == "no answer, fallback":
            second = call.staff_legs[1]
            assert second.to_number == "client:jo" and second.query["leg"] == "fallback"
            second.answer()
            second.hang_up()
            expected_agent = jo.id
        else:
            (redirect,) = driver.call_updates(call.sid)
            assert urlsplit(redirect.params["Url"][0]).path == "/twilio/voice/voicemail"
            call.silence()  # nor at the offer before the tone
            assert call.waiting_for == "record"
            call.leave_message(20)

    assert call.over
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id) == ("designated_contact", expected_agent)
    assert row.voicemail is (then == "no answer, voicemail")


# -- opening hours, bank holidays and the clock ------------------------------------------------


def test_the_bank_holidays_the_closed_tests_rely_on():
    christmas = bank_holidays("england-and-wales", 2026)
    assert {date(2026, 12, 25), date(2026, 12, 28)} <= christmas  # Boxing Day moved to Monday
    assert date(2026, 12, 29) not in christmas


@pytest.mark.parametrize(("now", "spoken"), [
    (datetime(2026, 12, 5, 10, 0, tzinfo=UTC), "We open again on Monday at 8 a.m."),
    (datetime(2026, 12, 25, 10, 0, tzinfo=UTC), "We open again on Tuesday at 8 a.m."),
    (datetime(2026, 12, 1, 18, 0, tzinfo=UTC), "We open again tomorrow at 8 a.m."),
    (datetime(2026, 12, 1, 7, 59, tzinfo=UTC), "We open again today at 8 a.m."),
])
def test_when_the_centre_is_closed_the_caller_hears_when_it_opens(driver, now, spoken):
    driver.at(now)
    call = driver.call(STRANGER)
    said = assert_message_twiml(call.document("/incoming"), spoken)
    assert "closed" in said[0]
    call.press("1")
    assert call.document("/menu").find("./Dial").text == EMERGENCY_LINE
    call.finish_dial("answered")
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.emergency, row.started_at) == ("closed", True, now)


@pytest.mark.parametrize(("now", "decision", "spoken"), [
    # Sunday 29 March 2026: the clocks go forward at 01:00 UTC.
    (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "closed", "tomorrow at 8 a.m."),
    (datetime(2026, 3, 30, 6, 59, tzinfo=UTC), "closed", "today at 8 a.m."),  # 07:59 BST
    (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), "centre", None),  # 08:00 BST
    (datetime(2026, 3, 30, 16, 59, tzinfo=UTC), "centre", None),  # 17:59 BST
    (datetime(2026, 3, 30, 17, 0, tzinfo=UTC), "closed", "tomorrow at 8 a.m."),  # 18:00 BST
    # Sunday 25 October 2026: the clocks go back at 01:00 UTC.
    (datetime(2026, 10, 23, 17, 0, tzinfo=UTC), "closed", "on Monday at 8 a.m."),  # Fri BST
    (datetime(2026, 10, 26, 7, 59, tzinfo=UTC), "closed", "today at 8 a.m."),  # 07:59 GMT
    (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), "centre", None),  # 08:00 GMT
])
def test_opening_hours_follow_the_clock_changes(driver, now, decision, spoken):
    driver.at(now)
    call = driver.call(STRANGER)
    root = call.document("/incoming")
    if spoken:
        assert_message_twiml(root, f"We open again {spoken}")
    else:
        assert_connect_twiml(root, call.sid)
    call.hang_up()
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.started_at) == (decision, now)


def test_an_all_day_window_starts_at_local_midnight(driver, services, clock, staff):
    restrict(services, clock, call_windows="Mon 00:00-24:00")
    # Sunday 28 June 2026, 23:59 BST: the window opens in a minute's time.
    driver.at(datetime(2026, 6, 28, 22, 59, tzinfo=UTC))
    before = driver.call(POI)
    assert_message_twiml(before.document("/incoming"), "You can next call us tomorrow")
    before.silence()
    # Monday 00:00 BST (still Sunday in UTC): in the window, but the centre opens at 8.
    driver.at(datetime(2026, 6, 28, 23, 0, tzinfo=UTC))
    night = driver.call(POI)
    assert_message_twiml(night.document("/incoming"), "We open again today at 8 a.m.")
    night.silence()
    assert [driver.call_log(c.sid)[0].decision for c in (before, night)] == [
        "outside_window", "closed"]


def test_an_all_day_window_connects_at_midnight_when_the_centre_is_always_open(
        services, staff, twilio_rest, clock):
    services.settings = services.settings.with_overrides(opening_hours="Mon-Sun 00:00-24:00")
    clock.set(datetime(2026, 6, 28, 23, 0, tzinfo=UTC))  # Monday 00:00 BST
    restrict(services, clock, call_windows="Mon 00:00-24:00")
    driver = CallDriver(services, twilio_rest, clock)
    try:
        driver.set_available(staff["agent"])
        call = driver.call(POI)
        assert_connect_twiml(call.document("/incoming"), call.sid)
        call.staff_legs[0].answer()
        call.hang_up()
        assert driver.call_log(call.sid)[0].decision == "within_window"
    finally:
        driver.close()


def test_an_all_day_window_is_spoken_naturally(driver, services, clock):
    restrict(services, clock, call_windows="Mon 00:00-24:00")
    driver.at(datetime(2026, 6, 28, 22, 59, tzinfo=UTC))
    call = driver.call(POI)
    assert not call.heard("between midnight and midnight")


# -- restrictions that end ----------------------------------------------------------------------


@pytest.mark.parametrize(("ends_on", "now", "decision"), [
    ("2026-11-30", OPEN, "centre"),  # ended yesterday
    ("2026-12-01", OPEN, "written_only"),  # ends today: still in force
    # 30 June is the last day in London until 23:00 UTC (midnight BST).
    ("2026-06-30", datetime(2026, 6, 30, 22, 30, tzinfo=UTC), "written_only"),
    ("2026-06-30", datetime(2026, 6, 30, 23, 30, tzinfo=UTC), "closed"),
])
def test_a_restriction_applies_up_to_and_including_its_last_day(driver, services, clock,
                                                                 ends_on, now, decision):
    entry_id = restrict(services, clock, written_only="yes", starts_on="2026-06-01",
                        decided_on="2026-05-20", ends_on=ends_on)
    driver.at(now)
    call = driver.call(POI)
    call.hang_up()
    row, _events = driver.call_log(call.sid)
    assert row.decision == decision
    assert row.entry_id == (entry_id if decision == "written_only" else None)


def test_a_restriction_lifted_mid_day_no_longer_applies_to_the_next_call(driver, services,
                                                                        clock):
    restrict(services, clock, written_only="yes")
    first = driver.call(POI)
    first.silence()
    driver.at(OPEN + timedelta(hours=1))
    services.register.lift("QL-1", "manager@example.org", "Behaviour improved", clock.now)
    driver.at(OPEN + timedelta(hours=1, minutes=5))
    second = driver.call(POI)
    assert_connect_twiml(second.document("/incoming"), second.sid)
    second.hang_up()
    assert [driver.call_log(c.sid)[0].decision for c in (first, second)] == [
        "written_only", "centre"]


# -- callbacks that come twice, late, or out of order --------------------------------------------

CALLBACK_PATHS = ("/twilio/voice/status", "/twilio/voice/agent/status",
                  "/twilio/voice/conference", "/twilio/voice/recording")


def test_duplicate_and_out_of_order_callbacks_are_recorded_once(driver, staff, clock):
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    call.staff_legs[0].answer()
    clock.set(clock.now + timedelta(minutes=2))
    call.hang_up()
    row_before, events_before = driver.call_log(call.sid)
    callbacks = [x for x in driver.emulator.exchanges if x.path in CALLBACK_PATHS]
    assert {x.path for x in callbacks} >= set(CALLBACK_PATHS[:3])

    with driver.workers_stopped():
        for exchange in [*reversed(callbacks), *callbacks]:
            assert driver.emulator.replay(exchange).status == 204

    row, events = driver.call_log(call.sid)
    assert sorted(e.event_key for e in events) == sorted(e.event_key for e in events_before)
    assert (row.status, row.agent_id, row.duration_seconds, row.ended_at) == (
        row_before.status, row_before.agent_id, 120, row_before.ended_at)
    assert len(driver.calls_created()) == 1


def test_a_caller_who_hangs_up_before_the_agent_answers_is_not_connected(driver, staff):
    alex = staff["agent"]
    driver.set_available(alex)
    call = driver.call(STRANGER)
    (leg,) = call.staff_legs
    call.hang_up()  # the caller's "completed" arrives before the agent's answer
    leg.answer()
    assert leg.heard("the caller is no longer waiting") and leg.over
    row, events = driver.call_log(call.sid)
    assert (row.status, row.agent_id) == ("completed", None)
    assert "connected" not in {e.kind for e in events}
    assert driver.availability(alex) is Availability.AVAILABLE


def test_an_agent_who_answers_after_the_caller_went_to_voicemail_is_not_connected(driver, staff):
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    (leg,) = call.staff_legs
    driver.run_scheduled()  # the maximum wait passes while the agent's phone rings
    assert call.waiting_for == "record"
    leg.answer()
    call.leave_message(10)
    row, events = driver.call_log(call.sid)
    assert row.voicemail and "connected" not in {e.kind for e in events}
    assert row.agent_id is None and leg.over


def test_rest_announcements_and_hang_ups_reach_the_caller(driver, services, staff):
    driver.set_available(staff["agent"])
    call = driver.call(STRANGER)
    call.staff_legs[0].answer()
    live = read_live(services.redis, call.sid)
    assert live.state == "connected" and live.conference_sid.startswith("CF")

    # What the console does through the workers' client: speak to the caller, then end the call.
    rest_api.announce_to_participant(services.twilio, live.conference_sid, call.sid,
                                        f"{driver.base_url}/twilio/voice/hold")
    driver.settle()
    assert "announcement: Thank you for waiting. A member of our team will be with you shortly." \
        in call.transcript
    rest_api.end_call(services.twilio, call.sid)
    driver.settle()
    assert call.over and call.staff_legs[0].over
    row, _events = driver.call_log(call.sid)
    assert (row.status, row.agent_id) == ("completed", staff["agent"].id)
    assert driver.availability(staff["agent"]) is Availability.AVAILABLE


# -- failures: Redis, the workers, forged requests -----------------------------------------------


def test_with_redis_stopped_the_caller_can_leave_a_message_that_reaches_the_log_later(
        services, staff, twilio_rest, clock, tmp_path, more_services):
    clock.set(OPEN)
    doomed = EmbeddedRedis(tmp_path / "doomed")
    call_path = more_services(services.settings.with_overrides(event_spool=EventSpool.DISK),
                              _redis_url=doomed.url)
    doomed.close()
    driver = CallDriver(services, twilio_rest, clock, app_services=call_path)
    try:
        driver.set_available(staff["agent"])
        call = driver.call(STRANGER)
        root = call.document("/incoming")
        gather = root.find("./Gather")
        assert gather is not None and texts(gather, "./Say")[-1] == EMERGENCY_OFFER
        assert "trouble" in texts(gather, "./Say")[0]
        assert root.find("./Record") is not None
        call.silence()
        assert call.transcript[-1] == "beep"
        recording = call.leave_message(40)
        assert call.over and not driver.calls_created(), "nobody can be dialled"
        # The register is still read (from the database): a restriction still applies.
        restrict(services, clock, written_only="yes")
        written = driver.call(POI)
        assert_message_twiml(written.document("/incoming"), "contact us in writing")
        written.silence()
        spool = services.settings.var_dir / "spool"
        assert list(spool.glob("*.jsonl")) and driver.call_log(call.sid) == (None, [])

        # Redis is back (the workers' Redis): the pump drains the spool into the call log.
        pump.pump_events()
        driver.settle()
        row, events = driver.call_log(call.sid)
        assert (row.decision, row.voicemail, row.recording_url) == ("centre", True,
                                                                    recording.url)
        assert drain_spool(spool, services.worker_redis) == 0
        pump.pump_events()
        assert [e.event_key for e in driver.call_log(call.sid)[1]] == [e.event_key for e in events]
        assert_once(Counter(e.kind for e in events), *CORE_EVENTS, "voicemail", "recording",
                    "status")
        (lookup,) = [e for e in driver.call_log(written.sid)[1] if e.kind == "lookup"]
        assert lookup.detail["source"] == "database"
        assert driver.call_log(written.sid)[0].decision == "written_only"
        assert driver.availability(staff["agent"]) is Availability.AVAILABLE
    finally:
        driver.close()
        call_path.engine.dispose()


def test_calls_made_while_the_workers_are_stopped_reach_the_log_once_they_run(
        driver, services, clock, staff):
    restrict(services, clock, written_only="yes")
    driver.set_available(staff["agent"])
    with driver.workers_stopped():
        gone = driver.call(STRANGER)
        gone.hang_up()
        written = driver.call(POI)
        written.silence()
        assert services.worker_redis.xlen(STREAM_KEY) >= 4
        assert driver.call_log(gone.sid) == (None, [])
    assert services.worker_redis.xlen(STREAM_KEY) == 0
    assert_once(driver.event_counts(gone.sid), *CORE_EVENTS, "status")
    assert_once(driver.event_counts(written.sid), *CORE_EVENTS, "status")
    assert not driver.calls_created(), "the caller had gone before a worker could dial"
    assert driver.availability(staff["agent"]) is Availability.AVAILABLE
    pump.pump_events()
    assert_once(driver.event_counts(gone.sid), *CORE_EVENTS, "status")


def test_a_forged_webhook_is_refused_and_writes_nothing(driver, services):
    forger = TwilioEmulator(driver.base_url, "not-the-auth-token", driver._post)
    call = forger.place_call(STRANGER)
    assert [x.status for x in forger.exchanges] == [403, 403]  # the call, its status callback
    assert call.over
    real = driver.call(STRANGER)
    real.hang_up()
    forged = forger.post_signed(f"{driver.base_url}/twilio/voice/status",
                                {"CallSid": real.sid, "CallStatus": "busy", "CallDuration": "9"})
    assert forged.status == 403
    driver.settle()
    assert driver.call_log(call.sid) == (None, [])
    assert driver.call_log(real.sid)[0].status == "completed"
    assert services.worker_redis.xlen(STREAM_KEY) == 0
    assert not (services.settings.var_dir / "spool").exists()
