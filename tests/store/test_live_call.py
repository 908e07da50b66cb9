"""The live call: one typed record, stored as the same Redis hash the console has always read."""

import pytest

from callflow.call_state import CallState
from store.live_call import LiveCall, live_call, live_key, read_live, update_live

SID = "CA" + "e" * 32


def test_a_live_call_is_stored_under_the_hash_fields_the_console_reads():
    live = LiveCall(state=CallState.WAITING, outcome="centre", number="+447700900123",
                    withheld=False, lookup_failed=True, entry_id=7, fallback_staff_id=3)
    assert live.encode() == {"state": "waiting", "outcome": "centre", "from": "+447700900123",
                             "withheld": "0", "lookup_failed": "1", "entry_id": "7",
                             "fallback_staff_id": "3"}


def test_a_stored_hash_reads_back_as_the_same_live_call():
    stored = {b"state": b"ringing", b"from": b"+447700900123", b"staff_id": b"",
              b"ringing_staff_id": b"12", b"ringing_leg_sid": b"CA" + b"f" * 32, b"warned": b"1"}
    live = LiveCall.decode(stored)
    assert (live.state, live.number, live.staff_id, live.ringing_staff_id, live.warned) == (
        CallState.RINGING, "+447700900123", None, 12, True)
    assert live.waiting and not live.restricted


def test_an_unknown_call_is_all_unknown_and_not_waiting(services):
    live = read_live(services.redis, SID)
    assert live == LiveCall() and not live.waiting


@pytest.mark.parametrize(("state", "waiting"), [(CallState.WAITING, True),
                                                (CallState.RINGING, True),
                                                (CallState.CONNECTED, False),
                                                (CallState.VOICEMAIL, False),
                                                (CallState.ENDED, False)])
def test_only_a_caller_waiting_or_being_rung_for_is_waiting(state, waiting):
    assert LiveCall(state=state).waiting is waiting


def test_an_update_writes_only_its_own_fields(services):
    update_live(services.redis, SID, LiveCall(state=CallState.WAITING, number="+447700900123"))
    update_live(services.redis, SID, LiveCall(conference_sid="CF" + "1" * 32))
    assert live_call(services.redis, SID) == {"state": "waiting", "from": "+447700900123",
                                              "conference_sid": "CF" + "1" * 32}
    assert services.redis.ttl(live_key(SID)) > 0


def test_a_call_that_has_ended_stays_ended(services):
    update_live(services.redis, SID, LiveCall(state=CallState.ENDED))
    assert not update_live(services.redis, SID, LiveCall(state=CallState.RINGING, staff_id=4))
    live = read_live(services.redis, SID)
    assert (live.state, live.staff_id) == (CallState.ENDED, 4), "other fields are still written"


def test_an_update_for_a_caller_no_longer_waiting_writes_nothing(services):
    update_live(services.redis, SID, LiveCall(state=CallState.VOICEMAIL))
    ringing = LiveCall(state=CallState.RINGING, ringing_staff_id=4)
    assert not update_live(services.redis, SID, ringing,
                           while_in={CallState.WAITING, CallState.RINGING})
    assert read_live(services.redis, SID) == LiveCall(state=CallState.VOICEMAIL)
