"""A waiting caller's dispatch to a free agent reads the caller's live state once after claiming
the agent, and uses that read for the dial too: real Redis, Twilio's REST API checked by Prism."""

from __future__ import annotations

from callflow.call_state import CallState
from store.agent_pool import AgentPool, Availability
from store.live_call import LiveCall, read_live, update_live
from tests.support.round_trips import count_round_trips
from workers import calls
from workers.context import use_services

SID = "CA" + "8" * 32
EARLIER = "CA" + "9" * 32


def test_dispatching_a_waiting_caller_to_a_free_agent_costs_five_redis_round_trips(
        services, staff, twilio_rest, monkeypatch):
    services.twilio_http = twilio_rest.http
    use_services(services)
    pool = AgentPool(services.worker_redis)
    try:
        # An earlier caller's dispatch opens the connections and loads the scripts.
        update_live(services.worker_redis, EARLIER, LiveCall(state=CallState.WAITING))
        pool.set_availability(staff["agent2"].id, Availability.AVAILABLE)
        assert calls.dispatch_to_pool(EARLIER, 0) == f"dialled staff {staff['agent2'].id}"

        alex = staff["agent"]
        update_live(services.worker_redis, SID,
                    LiveCall(state=CallState.WAITING, fallback_staff_id=staff["manager"].id))
        pool.set_availability(alex.id, Availability.AVAILABLE)
        sent = count_round_trips(monkeypatch)

        assert calls.dispatch_to_pool(SID, 0) == f"dialled staff {alex.id}"

        # Waiting? The agent claimed; still waiting? Then, after the REST request: the "dialled"
        # event, and the live state set to ringing (the fallback came from the second read).
        assert sent[0] == 5
    finally:
        use_services(None)
    dial = [r for r in twilio_rest.http.requests if r.path.endswith("/Calls.json")][-1]
    assert f"call={SID}" in dial.params["Url"][0]
    assert f"fallback={staff['manager'].id}" in dial.params["Url"][0]
    assert read_live(services.worker_redis, SID).state is CallState.RINGING
