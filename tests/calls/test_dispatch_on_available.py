"""An agent who becomes available is offered the longest-waiting caller at once, not at the
caller's next retry (issue 15: agent available -> waiting caller dialled). Whole calls, as in
test_scenarios.py: the order of what happens is asserted, never the wall clock."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from store.agent_pool import RECOVERY_KEY, AgentPool, Availability
from store.waiting_callers import OFFER_JOB, WaitingCallers
from tests.calls.test_scenarios import STRANGER
from tests.console.test_api import bearer

OTHER = "+447700900556"


def dialled_to(driver) -> list[str]:
    """Whom the workers asked Twilio to ring, in order."""
    return [r.params["To"][0] for r in driver.calls_created()]


def dispatch_retries(driver, call_sid: str) -> list[str]:
    """The caller's "try again in 5 s" jobs still waiting to run."""
    return [job for job in driver.scheduled() if call_sid in job and "dispatch" in job]


def make_available(driver, services, member) -> None:
    """The agent's console: PUT /api/me/availability, as their browser sends it."""
    answer = driver.client.put("/api/me/availability", json={"availability": "available"},
                               headers=bearer(services, member))
    assert answer.status_code == 200 and answer.json["availability"] == "available"
    driver.settle()


def test_a_waiting_caller_is_rung_for_an_agent_as_they_become_available(driver, services,
                                                                        staff):
    alex = staff["agent"]
    call = driver.call(STRANGER)  # nobody is available: the caller waits
    assert dialled_to(driver) == [] and call.waiting_for == "conference"
    assert WaitingCallers(services.redis).callers() == [call.sid]
    assert len(dispatch_retries(driver, call.sid)) == 1

    make_available(driver, services, alex)

    # Rung before the caller's retry has run: it is still scheduled.
    assert dialled_to(driver) == ["client:alex"]
    assert len(dispatch_retries(driver, call.sid)) == 1
    assert WaitingCallers(services.redis).callers() == []
    (leg,) = call.staff_legs
    assert leg.ringing and leg.query["leg"] == "pool" and leg.query["attempt"] == "0"
    leg.answer()

    driver.run_scheduled()  # the retry, the safety net, finds the caller taken: rings nobody
    assert dialled_to(driver) == ["client:alex"]
    leg.hang_up()
    row, events = driver.call_log(call.sid)
    assert (row.decision, row.agent_id, row.status) == ("centre", alex.id, "completed")
    counts = Counter(e.kind for e in events)
    assert (counts["dialled"], counts["connected"], counts["no_answer"]) == (1, 1, 0)
    assert driver.availability(alex) is Availability.AVAILABLE


def test_the_longest_waiting_caller_is_rung_for_an_agent_whose_call_ends(driver, services,
                                                                        staff):
    alex = staff["agent"]
    driver.set_available(alex)
    first = driver.call(STRANGER)
    (first_leg,) = first.staff_legs
    first_leg.answer()
    second = driver.call(OTHER)  # alex is on a call: the second caller waits
    assert dialled_to(driver) == ["client:alex"] and second.staff_legs == []

    first_leg.hang_up()  # alex's leg ends and frees them

    assert dialled_to(driver) == ["client:alex", "client:alex"]
    (second_leg,) = second.staff_legs
    assert second_leg.ringing and len(dispatch_retries(driver, second.sid)) == 1
    second_leg.answer()
    assert AgentPool(services.redis).current_call(alex.id) == second.sid
    second_leg.hang_up()
    assert driver.call_log(second.sid)[0].agent_id == alex.id


def test_callers_are_rung_oldest_first_as_agents_become_available(driver, services, staff):
    alex, jo = staff["agent"], staff["agent2"]
    older = driver.call(STRANGER)
    driver.clock.set(driver.clock.now + timedelta(seconds=1))
    newer = driver.call(OTHER)

    make_available(driver, services, jo)
    assert [leg.to_number for leg in older.staff_legs] == ["client:jo"] and not newer.staff_legs
    make_available(driver, services, alex)
    assert [leg.to_number for leg in newer.staff_legs] == ["client:alex"]
    assert dialled_to(driver) == ["client:jo", "client:alex"]


def run_offers(driver) -> int:
    """Run the scheduled offer jobs now (and nothing else scheduled); how many there were."""
    registry = driver.services.queue.scheduled_job_registry
    offers = [job.id for job in map(driver.services.queue.fetch_job, registry.get_job_ids())
              if job is not None and job.func_name == OFFER_JOB]
    for job_id in offers:
        registry.requeue(job_id)
    driver.settle()
    return len(offers)


def test_an_agent_whose_recovery_ends_is_offered_the_waiting_caller(driver, services, staff):
    alex = staff["agent"]
    driver.set_available(alex)
    first = driver.call(STRANGER)
    (first_leg,) = first.staff_legs
    first_leg.answer()
    ended = driver.client.post(f"/api/calls/{first.sid}/end",
                               json={"reason": "threat_or_violence"},
                               headers=bearer(services, alex))
    assert ended.status_code == 200 and ended.json["recovery_until"]
    driver.settle()
    assert first.over and driver.availability(alex) is Availability.RECOVERING
    second = driver.call(OTHER)
    assert dialled_to(driver) == ["client:alex"], "recovering: offered no call"

    services.redis.delete(RECOVERY_KEY.format(staff_id=alex.id))  # Redis expires it
    assert run_offers(driver) == 1

    assert dialled_to(driver) == ["client:alex", "client:alex"]
    assert [leg.query["leg"] for leg in second.staff_legs] == ["pool"]
    assert len(dispatch_retries(driver, second.sid)) == 1, "before the caller's retry"


def test_an_agent_who_gives_the_reason_owed_is_offered_the_waiting_caller(driver, services,
                                                                         staff):
    alex = staff["agent"]
    headers = bearer(services, alex)
    driver.set_available(alex)
    first = driver.call(STRANGER)
    (first_leg,) = first.staff_legs
    first_leg.answer()
    warned = driver.client.post(f"/api/calls/{first.sid}/warning", json={}, headers=headers)
    assert warned.status_code == 200, warned.json
    driver.settle()
    ended = driver.client.post(f"/api/calls/{first.sid}/end", json={}, headers=headers)
    assert ended.status_code == 200 and ended.json["wrap_up_owed"] is True, ended.json
    driver.settle()
    second = driver.call(OTHER)
    assert driver.availability(alex) is Availability.WRAP_UP and second.staff_legs == []

    given = driver.client.post(f"/api/calls/{first.sid}/wrap-up",
                               json={"reason": "unreasonable_demands"}, headers=headers)
    assert given.status_code == 200, given.json
    driver.settle()

    assert [leg.query["leg"] for leg in second.staff_legs] == ["pool"]
    assert dialled_to(driver) == ["client:alex", "client:alex"]
    assert len(dispatch_retries(driver, second.sid)) == 1, "before the caller's retry"


def test_a_caller_who_hung_up_while_waiting_is_passed_over_for_the_next(driver, services, staff):
    alex = staff["agent"]
    older = driver.call(STRANGER)
    driver.clock.set(driver.clock.now + timedelta(seconds=1))
    newer = driver.call(OTHER)
    assert WaitingCallers(services.redis).callers() == [older.sid, newer.sid]

    with driver.workers_stopped():  # the hang-up's jobs and the offer run together after it
        older.hang_up()
        answer = driver.client.put("/api/me/availability", json={"availability": "available"},
                                   headers=bearer(services, alex))
        assert answer.status_code == 200

    assert older.over and older.staff_legs == []
    assert [leg.to_number for leg in newer.staff_legs] == ["client:alex"]
    assert dialled_to(driver) == ["client:alex"]
    assert WaitingCallers(services.redis).callers() == []
    assert AgentPool(services.redis).current_call(alex.id) == newer.sid
