"""Whole calls under call limits (policy 4.6): the simulator plays Twilio against the real app,
pump and workers; Twilio's REST requests are checked against its OpenAPI spec (Prism)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from callflow.decision import EMERGENCY_OFFER
from store.call_events import job_id_for
from store.call_limits import TALLY_KEY
from store.live_call import read_live
from tests.calls.test_scenarios import EMERGENCY_LINE, OPEN, POI, assert_connect_twiml, restrict
from tests.support.web_client import client_signed_in_as

# The register asks every restriction for its evidence and for its warning letter (5.1).
EVIDENCE = {"evidence": "written: letters of 3 and 10 November about the same closed issue",
            "no_warning_reason": "the customer was told on each call and in writing"}
OVER_LIMIT = ("Thank you for calling. As we agreed with you in writing, we take up to 1 call a "
              "day from you, and you have reached that today.")


def run_step(driver, call_sid: str, key: str) -> None:
    """Run one call's scheduled step (a timed job) now, as the scheduler would when it is due."""
    job_id = job_id_for(call_sid, key)
    assert job_id in driver.scheduled(), f"{key} was not scheduled: {driver.scheduled()}"
    driver.services.queue.scheduled_job_registry.requeue(job_id)
    driver.settle()
    driver.check()


def test_a_caller_over_their_daily_limit_hears_when_to_call_and_keeps_the_emergency_line(
        driver, services, clock, staff):
    entry_id = restrict(services, clock, call_frequency="1 a day", **EVIDENCE)
    driver.set_available(staff["agent"])

    first = driver.call(POI)
    assert_connect_twiml(first.document("/incoming"), first.sid)
    first.staff_legs[0].answer()
    first.staff_legs[0].hang_up()
    assert services.redis.zscore(TALLY_KEY.format(entry_id=entry_id), first.sid) == (
        OPEN.timestamp())

    driver.at(OPEN + timedelta(hours=2))
    second = driver.call(POI)
    gather = second.document("/incoming").find("./Gather")
    said = [" ".join(s.text.split()) for s in gather.findall("./Say")]
    assert said == [OVER_LIMIT, "You can call us again tomorrow at 8 a.m.",
                    f"You can also write to us at: {services.settings.written_contact}",
                    EMERGENCY_OFFER]
    assert second.waiting_for == "gather"
    second.press("1")
    assert f"dial: {EMERGENCY_LINE}" in second.transcript
    second.finish_dial("answered", duration_seconds=60)
    assert second.over
    assert len(driver.calls_created()) == 1, "only the first call rang anyone"

    row, _events = driver.call_log(second.sid)
    assert (row.decision, row.emergency, row.entry_id) == ("over_call_limit", True, entry_id)
    assert services.redis.zcard(TALLY_KEY.format(entry_id=entry_id)) == 1, \
        "a call turned away does not count"
    driver.check()


def test_the_next_day_the_caller_is_put_through_again(driver, services, clock, staff):
    restrict(services, clock, call_frequency="1 a day", **EVIDENCE)
    driver.set_available(staff["agent"])
    first = driver.call(POI)
    first.staff_legs[0].answer()
    first.staff_legs[0].hang_up()

    driver.at(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    driver.set_available(staff["agent"])
    again = driver.call(POI)
    assert_connect_twiml(again.document("/incoming"), again.sid)
    row, _events = driver.call_log(again.sid)
    assert row.decision == "within_window"


def test_a_long_call_is_warned_two_minutes_before_the_limit_then_closed_and_ended(
        driver, services, clock, staff, app):
    restrict(services, clock, max_call_minutes="15", **EVIDENCE)
    agent = staff["agent"]
    driver.set_available(agent)
    call = driver.call(POI)
    call.silence()  # past the emergency offer, into the conference
    (leg,) = call.staff_legs
    leg.answer()
    assert read_live(services.redis, call.sid).state == "connected"
    scheduled = driver.services.queue.scheduled_job_registry
    warn_at = scheduled.get_scheduled_time(job_id_for(call.sid, "time-warning"))
    end_at = scheduled.get_scheduled_time(job_id_for(call.sid, "time-end"))
    assert (end_at - warn_at) == timedelta(minutes=2)

    clock.set(OPEN + timedelta(minutes=13))
    run_step(driver, call.sid, "time-warning")
    assert ("announcement: This call will end in about two minutes: as we agreed with you in "
            "writing, your calls last up to 15 minutes.") in call.transcript
    assert not call.over and not leg.over

    clock.set(OPEN + timedelta(minutes=15))
    run_step(driver, call.sid, "time-end")
    assert call.over and leg.over
    assert ("say: We have now reached the length of call we agreed with you in writing, so we "
            "are ending this call. Thank you for calling.") in call.transcript
    (redirect,) = [r for r in driver.call_updates(call.sid) if "Url" in r.params]
    assert redirect.params["Url"][0].endswith("/twilio/voice/announce/time-closing")

    row, events = driver.call_log(call.sid)
    assert (row.ended_by_agent, row.warned, row.agent_id) == (True, False, agent.id)
    kinds = Counter(e.kind for e in events)
    assert (kinds["time_warning"], kinds["ended_by_agent"]) == (1, 1)
    ended = next(e for e in events if e.kind == "ended_by_agent")
    assert ended.detail["reason"] == "call_length_limit" and ended.detail["by"] == "callflow"
    assert ended.detail["minutes"] == 15
    assert driver.availability(agent).value == "available", "free again after the call"

    # The call's timeline says it in words a supervisor reads.
    page = client_signed_in_as(app, "supervisor@example.org").get(f"/workspace/calls/{call.sid}")
    html = page.get_data(as_text=True)
    assert "Time warning played" in html and "Ended at the agreed call length" in html
    assert "after 15 minutes, with the closing statement" in html


def test_a_call_already_over_is_neither_warned_nor_ended(driver, services, clock, staff):
    restrict(services, clock, max_call_minutes="10", **EVIDENCE)
    driver.set_available(staff["agent"])
    call = driver.call(POI)
    call.silence()
    call.staff_legs[0].answer()
    call.hang_up()
    before = len(driver.rest)
    run_step(driver, call.sid, "time-warning")
    run_step(driver, call.sid, "time-end")
    assert len(driver.rest) == before, "no REST request for a call that is over"
    _row, events = driver.call_log(call.sid)
    assert {e.kind for e in events}.isdisjoint({"time_warning", "ended_by_agent"})


def test_a_caller_who_chose_the_emergency_line_is_never_cut_off_by_the_limit(
        driver, services, clock, staff):
    restrict(services, clock, max_call_minutes="5", **EVIDENCE)
    call = driver.call(POI)
    call.press("1")
    assert f"dial: {EMERGENCY_LINE}" in call.transcript
    before = len(driver.rest)
    run_step(driver, call.sid, "time-warning")
    run_step(driver, call.sid, "time-end")
    assert len(driver.rest) == before and not call.over, "the emergency call goes on"
    call.finish_dial("answered", duration_seconds=600)
    _row, events = driver.call_log(call.sid)
    assert {e.kind for e in events}.isdisjoint({"time_warning", "ended_by_agent"})
