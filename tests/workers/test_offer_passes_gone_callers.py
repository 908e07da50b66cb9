"""An agent who becomes available is offered the caller still waiting, however many callers
ahead of them in the index have hung up but are not yet taken out of it (their hang-up's job
queued behind others, as under load): real Redis, the jobs called directly, Twilio's REST API
checked by Prism."""

from __future__ import annotations

import pytest

from callflow.call_state import CallState
from store.agent_pool import AgentPool, Availability
from store.live_call import LiveCall, update_live
from store.waiting_callers import WaitingCallers
from workers import calls
from workers.context import use_services

STILL_WAITING = "CA" + "7" * 32
HUNG_UP = [f"CA{n:032x}" for n in range(1, calls.OFFER_TRIES + 6)]  # more than one job tries


@pytest.fixture
def worker(services, staff, twilio_rest):
    """The workers' services, REST calls going to the Prism mock."""
    services.twilio_http = twilio_rest.http
    use_services(services)
    yield services
    use_services(None)


def _dialled(twilio_rest) -> list[str]:
    return [r.params["Url"][0] for r in twilio_rest.http.requests if r.path.endswith("/Calls.json")]


def test_the_caller_still_waiting_is_rung_behind_callers_who_hung_up(worker, staff, twilio_rest):
    alex = staff["agent"]
    waiting = WaitingCallers(worker.worker_redis)
    for n, sid in enumerate(HUNG_UP):
        waiting.claim_agent(sid, 0, 100.0 + n)  # nobody was free: they waited
        update_live(worker.worker_redis, sid, LiveCall(state=CallState.ENDED))  # then hung up
    update_live(worker.worker_redis, STILL_WAITING, LiveCall(state=CallState.WAITING))
    waiting.claim_agent(STILL_WAITING, 0, 200.0)
    pool = AgentPool(worker.worker_redis)
    pool.set_availability(alex.id, Availability.AVAILABLE)

    assert calls.offer_waiting_caller(alex.id) == f"dialled staff {alex.id}"

    [url] = _dialled(twilio_rest)
    assert f"call={STILL_WAITING}" in url
    assert pool.current_call(alex.id) == STILL_WAITING
    assert waiting.callers() == [], "the callers who hung up are out of the index too"
    assert all(waiting.given_to(sid) is None for sid in HUNG_UP)


def test_an_agent_is_left_available_when_everyone_in_the_index_has_hung_up(worker, staff,
                                                                          twilio_rest):
    alex = staff["agent"]
    waiting = WaitingCallers(worker.worker_redis)
    for n, sid in enumerate(HUNG_UP):
        waiting.claim_agent(sid, 0, 100.0 + n)
        update_live(worker.worker_redis, sid, LiveCall(state=CallState.ENDED))
    pool = AgentPool(worker.worker_redis)
    pool.set_availability(alex.id, Availability.AVAILABLE)

    calls.offer_waiting_caller(alex.id)

    assert _dialled(twilio_rest) == [] and waiting.callers() == []
    assert pool.availability(alex.id) is Availability.AVAILABLE
    assert pool.current_call(alex.id) is None
