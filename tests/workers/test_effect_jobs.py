"""The one table from the core's effects to the jobs that carry them out."""

import threading
import time

import pytest
from rq import SimpleWorker

from callflow.effects import (
    EFFECT_TYPES,
    CallerLeft,
    DialPerson,
    DialPool,
    FreeStaff,
    Leg,
    NextAgent,
    OfferVoicemail,
    PassedOn,
)
from store.agent_pool import AgentPool
from store.call_events import Effect
from workers import pump
from workers.calls import EFFECT_RETRY, JOBS, run_effects
from workers.context import use_services

SID = "CA" + "a" * 32


def test_every_effect_the_core_can_ask_for_has_a_job():
    assert set(JOBS) == set(EFFECT_TYPES.values())


@pytest.mark.parametrize(("effect", "job", "args"), [
    (DialPool(0), "dispatch_to_pool", (SID, 0)),
    (DialPerson(4, Leg.DESIGNATED), "dial_staff", (SID, 4, "designated")),
    (NextAgent(4, 2), "agent_missed", (SID, 4, 2)),
    (OfferVoicemail(), "send_to_voicemail", (SID,)),
    (FreeStaff(4), "staff_free", (SID, 4)),
    (PassedOn(4, "voicemail"), "passed_on", (SID, 4, "voicemail")),
    (CallerLeft(), "call_finished", (SID,)),
])
def test_an_effect_starts_its_job_with_the_call_sid_first(services, effect, job, args):
    assert pump.start_effect(services.queue, SID, Effect.of(effect, "key"))
    started = services.queue.fetch_job(f"{SID}-key")
    assert (started.func_name, started.args) == (f"workers.calls.{job}", args)


@pytest.fixture
def worker_services(services):
    use_services(services)
    yield services
    use_services(None)


def test_effects_sharing_a_job_each_do_what_their_own_job_would(worker_services):
    s = worker_services
    other = "CA" + "b" * 32
    effects = [(SID, Effect.of(PassedOn(4, "voicemail"), "passed-on")),
               (other, Effect.of(PassedOn(5, "fallback"), "passed-on"))]
    assert pump.start_effects(s.queue, effects) == 2
    [job_id] = s.queue.job_ids
    SimpleWorker([s.queue], connection=s.worker_redis).work(burst=True)
    job = s.queue.fetch_job(job_id)
    assert job.get_status() == "finished"
    assert job.return_value() == {f"{SID}-passed-on": "passed on to voicemail",
                                  f"{other}-passed-on": "passed on to fallback"}
    pool = AgentPool(s.worker_redis)
    assert (pool.passed_on(4), pool.passed_on(5)) == ((SID, "voicemail"), (other, "fallback"))


def test_an_effect_that_fails_in_a_shared_job_is_tried_again_alone(worker_services, caplog):
    s = worker_services
    broken = ("broken-effect", "passed_on", (SID,))  # its job's other arguments are missing
    job = s.queue.enqueue(run_effects, [broken, (f"{SID}-next", "passed_on", (SID, 4, "fallback"))])
    SimpleWorker([s.queue], connection=s.worker_redis).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == {"broken-effect": "failed (TypeError); to be tried again alone",
                                  f"{SID}-next": "passed on to fallback"}
    assert AgentPool(s.worker_redis).passed_on(4) == (SID, "fallback")
    # The broken one waits, under its own id, for the first of the retries it would have had.
    assert s.queue.scheduled_job_registry.get_job_ids() == ["broken-effect"]
    alone = s.queue.fetch_job("broken-effect")
    assert (alone.func_name, alone.args, alone.retries_left) == (
        "workers.calls.passed_on", (SID,), EFFECT_RETRY.max)
    assert "effect broken-effect failed (TypeError)" in caplog.text


def test_different_calls_effects_in_one_job_run_side_by_side(worker_services, monkeypatch):
    # Each waits for the other: run one after another, the first would give up waiting.
    both_started = threading.Barrier(2, timeout=5)
    note = AgentPool.note_passed_on

    def waits_for_the_other(pool, staff_id, call_sid, to):
        both_started.wait()
        note(pool, staff_id, call_sid, to)

    monkeypatch.setattr(AgentPool, "note_passed_on", waits_for_the_other)
    other = "CA" + "b" * 32
    outcomes = run_effects([(f"{SID}-a", "passed_on", (SID, 4, "voicemail")),
                            (f"{other}-a", "passed_on", (other, 5, "fallback"))])
    assert outcomes == {f"{SID}-a": "passed on to voicemail", f"{other}-a": "passed on to fallback"}


def test_one_calls_effects_in_one_job_run_in_their_order(worker_services, monkeypatch):
    ran = []
    note = AgentPool.note_passed_on

    def slow_first(pool, staff_id, call_sid, to):
        if staff_id == 4:
            time.sleep(0.3)
        ran.append(staff_id)
        note(pool, staff_id, call_sid, to)

    monkeypatch.setattr(AgentPool, "note_passed_on", slow_first)
    other = "CA" + "b" * 32
    outcomes = run_effects([(f"{SID}-a", "passed_on", (SID, 4, "fallback")),
                            (f"{other}-a", "passed_on", (other, 6, "fallback")),
                            (f"{SID}-b", "passed_on", (SID, 5, "voicemail"))])
    assert list(outcomes) == [f"{SID}-a", f"{other}-a", f"{SID}-b"]
    # The other call's effect did not wait for this call's slow one; this call's came in order.
    assert ran == [6, 4, 5]
