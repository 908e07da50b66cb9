"""A job's log records name the call it works on, by its first argument."""

from callflow.call_state import CallState
from store.agent_pool import AgentPool, Availability
from store.live_call import LiveCall, update_live
from tests.support.log_capture import captured_log
from workers import calls
from workers.context import use_services

SID = "CA" + "d" * 32


def test_a_job_logs_in_json_with_the_call_sid_it_was_given(services, staff):
    use_services(services)
    try:
        update_live(services.worker_redis, SID, LiveCall(state=CallState.WAITING))
        alex = staff["agent"]
        AgentPool(services.worker_redis).set_availability(alex.id, Availability.AWAY)
        with captured_log("json") as log:
            calls.dial_staff(SID, alex.id, "pool")
            records = log.records()
    finally:
        use_services(None)
    away = [r for r in records if "is away" in r["message"]]
    assert len(away) == 1
    assert {r["call_sid"] for r in records} == {SID}
