"""The dial probe's slow and missed samples (issue 15: agent available -> waiting caller dialled)
were the jobs queued ahead of the caller's, not a lost offer: whichever of the caller's dispatch
and the agent's becoming available comes first, the caller is rung for the agent at the first
job that can, never at the 5 s retry. Whole calls, as in test_scenarios.py."""

from __future__ import annotations

from store.waiting_callers import OFFER_JOB, WaitingCallers
from tests.calls.test_dispatch_on_available import dialled_to, dispatch_retries
from tests.calls.test_scenarios import STRANGER
from tests.console.test_api import bearer


def _make_available(driver, services, member) -> None:
    answer = driver.client.put("/api/me/availability", json={"availability": "available"},
                               headers=bearer(services, member))
    assert answer.status_code == 200


def test_an_agent_available_before_the_callers_dispatch_has_run_is_taken_by_it(driver, services,
                                                                               staff):
    alex = staff["agent"]
    with driver.workers_stopped():  # the pump and the dispatch are behind other work
        call = driver.call(STRANGER)
        _make_available(driver, services, alex)
        # Nobody waits yet, so no offer is queued: the caller's own dispatch will find alex.
        assert OFFER_JOB not in [job.func_name for job in services.queue.jobs]
        assert WaitingCallers(services.redis).callers() == []

    assert dialled_to(driver) == ["client:alex"]
    (leg,) = call.staff_legs
    assert leg.query["attempt"] == "0", "rung by the first dispatch"
    assert dispatch_retries(driver, call.sid) == [], "no retry was needed"


def test_an_agent_available_after_the_callers_dispatch_found_nobody_is_offered_them(driver,
                                                                                  services,
                                                                                  staff):
    alex = staff["agent"]
    call = driver.call(STRANGER)  # the dispatch ran: nobody free, the caller waits
    assert WaitingCallers(services.redis).callers() == [call.sid]
    with driver.workers_stopped():
        _make_available(driver, services, alex)
        assert [job.func_name for job in services.queue.jobs] == [OFFER_JOB]

    assert dialled_to(driver) == ["client:alex"]
    assert len(dispatch_retries(driver, call.sid)) == 1, "rung before the caller's retry ran"


def test_each_offer_is_a_job_of_its_own_however_often_the_agent_becomes_available(driver,
                                                                                 services,
                                                                                 staff):
    alex = staff["agent"]
    driver.call(STRANGER)
    with driver.workers_stopped():
        _make_available(driver, services, alex)
        _make_available(driver, services, alex)
        offers = [job.id for job in services.queue.jobs if job.func_name == OFFER_JOB]
    assert len(offers) == 2 and len(set(offers)) == 2, "no job id shared, so none is dropped"
