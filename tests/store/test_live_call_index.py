"""The index of calls in progress (the supervisors' live-calls page reads it rather than scanning
Redis's keys): exactly the live calls, a call leaving it when it ends or its live state expires.
Real Redis."""

from __future__ import annotations

import time

from callflow.call_state import CallState
from store import live_call
from store.call_events import Batch
from store.live_call import (
    LIVE_INDEX_KEY,
    LiveCall,
    live_call_sids,
    live_key,
    set_live,
    update_live,
)

WAITING, CONNECTED, ENDED = ("CA" + digit * 32 for digit in "123")


def test_the_index_lists_exactly_the_calls_in_progress(services):
    update_live(services.redis, WAITING, LiveCall(state=CallState.WAITING))
    set_live(services.redis, CONNECTED, {"state": "connected", "warned": "1"})
    update_live(services.redis, ENDED, LiveCall(state=CallState.ENDED))
    services.redis.set("callflow:live:not-a-call", "x")

    assert sorted(live_call_sids(services.redis)) == [WAITING, CONNECTED]


def test_a_call_written_by_a_webhook_is_listed_until_its_caller_hangs_up(services):
    services.event_sink.emit(Batch.of(WAITING, live=LiveCall(state=CallState.WAITING)))
    assert live_call_sids(services.redis) == [WAITING]

    services.event_sink.emit(Batch.of(WAITING, live=LiveCall(state=CallState.ENDED)))
    assert live_call_sids(services.redis) == []
    assert services.redis.zcard(LIVE_INDEX_KEY) == 0, "ended: out of the index, not just hidden"


def test_a_call_that_has_ended_stays_out_however_late_its_other_fields_come(services):
    update_live(services.redis, ENDED, LiveCall(state=CallState.CONNECTED, staff_id=4))
    update_live(services.redis, ENDED, LiveCall(state=CallState.ENDED))
    update_live(services.redis, ENDED, LiveCall(ended_by_agent=True, end_reason="abuse"))
    assert live_call_sids(services.redis) == []


def test_a_call_whose_live_state_expired_is_trimmed_from_the_index(services, monkeypatch):
    update_live(services.redis, CONNECTED, LiveCall(state=CallState.CONNECTED))
    monkeypatch.setattr(live_call, "LIVE_TTL_SECONDS", 1)
    update_live(services.redis, WAITING, LiveCall(state=CallState.WAITING))
    assert sorted(live_call_sids(services.redis)) == [WAITING, CONNECTED]

    time.sleep(2.1)  # Redis expires the hash (its clock gives the index's scores too)

    assert services.redis.exists(live_key(WAITING)) == 0
    assert live_call_sids(services.redis) == [CONNECTED]
    assert services.redis.zrange(LIVE_INDEX_KEY, 0, -1) == [CONNECTED.encode()]


def test_an_update_refreshes_a_calls_place_in_the_index_with_its_expiry(services, monkeypatch):
    monkeypatch.setattr(live_call, "LIVE_TTL_SECONDS", 1)
    update_live(services.redis, WAITING, LiveCall(state=CallState.WAITING))
    monkeypatch.undo()
    update_live(services.redis, WAITING, LiveCall(state=CallState.RINGING))  # 6 hours again

    time.sleep(2.1)

    assert live_call_sids(services.redis) == [WAITING]


def test_a_call_recreated_by_a_backups_replay_is_listed(services):
    from store.call_events import replay, spooled_fields

    backup = spooled_fields(Batch.of(WAITING, live=LiveCall(state=CallState.WAITING)),
                            backup=True)
    replay(services.redis, [backup])  # the primary that took it died: the hash is not there

    assert live_call_sids(services.redis) == [WAITING]
