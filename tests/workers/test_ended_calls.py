"""Nobody is rung for, or left tied to, a call that has ended (item 4): the dial jobs re-check."""

from __future__ import annotations

import pytest

from callflow.call_state import CallState
from store import twilio_rest as rest_api
from store.agent_pool import AgentPool, Availability
from store.call_events import Batch
from store.live_call import LiveCall, read_live, update_live
from tests.support.round_trips import count_round_trips
from workers import calls
from workers.context import use_services

SID = "CA" + "4" * 32


@pytest.fixture
def worker(services, staff, twilio_rest):
    """The workers' services, REST calls going to the Prism mock; a caller waiting."""
    services.twilio_http = twilio_rest.http
    use_services(services)
    update_live(services.worker_redis, SID,
                LiveCall(state=CallState.WAITING, number="+447700900555"))
    yield services
    use_services(None)


def moves_on_while_dialling(services, monkeypatch, state: str) -> None:
    """The caller hangs up, or leaves for the emergency line, as the agent is dialled: the
    request's live state lands, and its job runs, between the dial job's check and its write."""
    dial = rest_api.dial_into_conference

    def dial_then_move_on(*args, **kwargs) -> str:
        leg_sid = dial(*args, **kwargs)
        services.event_sink.emit(Batch.of(SID, live=LiveCall(state=state)))
        calls.call_finished(SID)
        return leg_sid

    monkeypatch.setattr(rest_api, "dial_into_conference", dial_then_move_on)


@pytest.mark.parametrize("state", [CallState.ENDED, CallState.EMERGENCY])
def test_a_caller_who_moves_on_while_an_agent_is_dialled_frees_the_agent(worker, staff,
                                                                         twilio_rest,
                                                                         monkeypatch, state):
    alex = staff["agent"]
    pool = AgentPool(worker.worker_redis)
    pool.set_availability(alex.id, Availability.AVAILABLE)
    moves_on_while_dialling(worker, monkeypatch, state)

    calls.dispatch_to_pool(SID, 0)

    live = read_live(worker.worker_redis, SID)
    assert live.state is state, "the dial job left the state where the caller went"
    created = [r for r in twilio_rest.http.requests if r.path.endswith("/Calls.json")]
    cancelled = [r for r in twilio_rest.http.requests if r.params.get("Status") == ["canceled"]]
    assert len(created) == 1 and len(cancelled) == 1, "the phone was stopped"
    assert pool.availability(alex.id) is Availability.AVAILABLE
    assert pool.current_call(alex.id) is None


def test_a_retry_for_an_ended_call_claims_and_rings_nobody(worker, staff, twilio_rest):
    alex = staff["agent"]
    pool = AgentPool(worker.worker_redis)
    worker.event_sink.emit(Batch.of(SID, live=LiveCall(state=CallState.ENDED)))
    pool.set_availability(alex.id, Availability.AVAILABLE)

    assert calls.dispatch_to_pool(SID, 3) == "caller no longer waiting"
    assert calls.dial_staff(SID, alex.id, "designated") == "caller no longer waiting"
    assert twilio_rest.http.requests == []
    assert pool.availability(alex.id) is Availability.AVAILABLE
    assert pool.current_call(alex.id) is None


def test_a_caller_who_hangs_up_has_their_timers_cancelled(worker, monkeypatch):
    from callflow.effects import MAX_WAIT_KEY, OfferVoicemail, dispatch_key
    from store.call_events import Effect, job_id_for
    from workers.pump import start_effects

    timer = Effect.of(OfferVoicemail(), MAX_WAIT_KEY, 300)
    assert start_effects(worker.queue, [(SID, timer)]) == 1
    # Nobody is free: the caller waits, and their dispatch is tried again in a few seconds.
    assert calls.dispatch_to_pool(SID, 0) == "no agent available; waiting for one, trying again"
    registry = worker.queue.scheduled_job_registry
    timers = {job_id_for(SID, MAX_WAIT_KEY), job_id_for(SID, dispatch_key(1))}
    assert set(registry.get_job_ids()) == timers

    update_live(worker.worker_redis, SID, LiveCall(state=CallState.ENDED))
    sent = count_round_trips(monkeypatch)
    calls.call_finished(SID)

    # Out of the waiting index, then the timers cancelled and the live state read together.
    assert sent[0] == 2
    assert registry.get_job_ids() == []
    for job_id in timers:
        assert not worker.worker_redis.exists(worker.queue.job_class.key_for(job_id))
    # A replay of the call's first batch does not set the voicemail timer again.
    assert start_effects(worker.queue, [(SID, timer)]) == 0
