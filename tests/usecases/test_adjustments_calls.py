"""Whole calls through the real app, pump and workers (the simulator playing Twilio, REST
checked by the Prism mock): a representative's call, and a voicemail reaching the triage queue."""

from __future__ import annotations

from sqlalchemy import select

from store.models import TriageItem
from tests.calls.conftest import driver  # noqa: F401 - the whole-call driver fixture
from tests.calls.test_scenarios import LONDON_TODAY, restrict

UNCOVERED = "+447700900456"
COVERED = "+447700900789"
REPS = ("Jo Bloggs | advocate | 07700 900456 | not covered; "
        "Sam Example | daughter | 07700 900789 | covered")


def test_an_uncovered_representative_reaches_the_centre_and_their_voicemail_is_triaged(
        driver, services, clock):  # noqa: F811
    entry_id = restrict(services, clock, written_only="yes", representatives=REPS)
    services.register.rebuild_cache(LONDON_TODAY)
    call = driver.call(UNCOVERED)
    assert call.waiting_for == "conference"  # put through as anyone would be
    driver.run_scheduled()  # nobody is available: voicemail after the longest wait
    call.silence()  # nor at the emergency offer before the tone (the number is on the register)
    call.leave_message(20)
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.entry_id, row.voicemail) == ("centre", entry_id, True)
    with services.sessions() as session:
        (item,) = session.scalars(select(TriageItem)).all()
    assert (item.call_sid, item.entry_id, item.customer_ref, item.source, item.recording_url) == (
        call.sid, entry_id, "QL-1", "voicemail", row.recording_url)


def test_a_covered_representative_follows_the_written_only_arrangement(
        driver, services, clock):  # noqa: F811
    entry_id = restrict(services, clock, written_only="yes", representatives=REPS)
    services.register.rebuild_cache(LONDON_TODAY)
    call = driver.call(COVERED)
    assert call.heard("We have written to you to ask that you contact us in writing")
    row, _events = driver.call_log(call.sid)
    assert (row.decision, row.entry_id) == ("written_only", entry_id)
