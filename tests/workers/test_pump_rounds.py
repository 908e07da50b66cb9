"""A pump round costs a few statements and two Redis round trips whatever its size, with the same
results as recording its batches one at a time; the worker runs jobs without a fork per job."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry
from sqlalchemy import event as sa_event
from sqlalchemy import select

from callflow.effects import CallerLeft
from callflow.events import Event
from service.background import PatientWorker
from store.call_events import Batch, Effect
from store.call_log import CallLog
from store.db import transaction
from store.models import Call, CallEvent
from store.redis_client import Outage
from tests.conftest import NOW
from usecases.bootstrap import QUEUE_NAME
from workers import pump


def sid(n: int) -> str:
    return f"CA{n:032d}"


def at(minutes: float) -> object:
    return NOW + timedelta(minutes=minutes)


def received(n: int, minutes: float = 0) -> Event:
    return Event("received", "received", at(minutes),
                 {"from": f"+4477009{n:05d}", "to": "+441632960000", "withheld": False})


def status(name: str, minutes: float, sequence: int | None = None, **detail) -> Event:
    return Event("status", f"status:{name}", at(minutes),
                 {"status": name, "sequence": sequence, **detail})


def record_counting(services, batches: list[Batch]) -> tuple[int, int]:
    """Record batches in one transaction; returns (new events, SQL statements sent)."""
    statements = []

    def count(*_args) -> None:
        statements.append(1)

    engine = services.sessions.kw["bind"]
    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(services.sessions) as session:
            new = CallLog(session).record(batches)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    return new, len(statements)


def calls_by_sid(services) -> dict[str, Call]:
    with services.sessions() as session:
        return {c.call_sid: c for c in session.scalars(select(Call))}


def test_a_round_of_fifty_calls_is_three_statements(services):
    batches = []
    for n in range(50):
        batches.append(Batch(sid(n), (received(n), Event("decision", "decision", at(0),
                                                         {"outcome": "centre"}))))
        batches.append(Batch(sid(n), (status("completed", 4, 3, duration=240),)))
    new, statements = record_counting(services, batches)
    # The calls' insert, the events' insert, one executemany of the calls' summaries.
    assert (new, statements) == (150, 3)
    calls = calls_by_sid(services)
    assert len(calls) == 50
    call = calls[sid(7)]
    assert (call.from_number, call.decision, call.status, call.status_sequence,
            call.duration_seconds, call.started_at, call.ended_at) == (
        "+447700900007", "centre", "completed", 3, 240, at(0), at(4))


def test_a_round_gives_what_recording_its_batches_in_turn_gives(services):
    late_ringing = Batch(sid(1), (status("ringing", 1, 1),))
    batches = [
        # A call whose final status arrives before its first webhook, in the same round.
        Batch(sid(1), (status("completed", 5, 4, duration=60),)),
        Batch(sid(1), (received(1, 0),)),
        late_ringing,
        # The same callback twice in one round lands once.
        Batch(sid(2), (received(2, 1), status("in-progress", 2))),
        Batch(sid(2), (status("in-progress", 2),)),
    ]
    new, _statements = record_counting(services, batches)
    assert new == 5
    with services.sessions() as session:
        keys = sorted(session.scalars(select(CallEvent.event_key)))
    assert keys == [f"{sid(1)}:received", f"{sid(1)}:status:completed",
                    f"{sid(1)}:status:ringing", f"{sid(2)}:received",
                    f"{sid(2)}:status:in-progress"]
    calls = calls_by_sid(services)
    first, second = calls[sid(1)], calls[sid(2)]
    assert (first.status, first.status_sequence, first.started_at, first.ended_at,
            first.from_number) == ("completed", 4, at(0), at(5), "+447700900001")
    assert (second.status, second.started_at, second.ended_at) == ("in-progress", at(1), None)
    # Replayed in a later round, nothing is new and nothing changes.
    assert record_counting(services, batches)[0] == 0
    assert calls_by_sid(services)[sid(1)].status == "completed"


# --- a round's jobs: marked and enqueued in two round trips ------------------------------------

def test_a_rounds_effects_are_enqueued_once_each_and_delayed_ones_scheduled(services):
    effects = [(sid(n), Effect.of(CallerLeft(), "finished")) for n in range(21)]
    effects.append((sid(0), Effect.of(CallerLeft(), "later", delay_seconds=60)))
    effects.append((sid(0), Effect.of(CallerLeft(), "finished")))  # twice in one round
    assert pump.start_effects(services.queue, effects) == 22
    # Due now: ten to a job, and one left over alone under its own id.
    assert services.queue.job_ids == [f"effects-{sid(0)}-finished",
                                      f"effects-{sid(10)}-finished", f"{sid(20)}-finished"]
    first, second, alone = map(services.queue.fetch_job, services.queue.job_ids)
    assert (first.func_name, first.args, first.retries_left) == (
        "workers.calls.run_effects",
        ([(f"{sid(n)}-finished", "caller_left", (sid(n),)) for n in range(10)],), 3)
    assert second.args == ([(f"{sid(n)}-finished", "caller_left", (sid(n),))
                            for n in range(10, 20)],)
    assert (alone.func_name, alone.args, alone.retries_left) == (
        "workers.calls.call_finished", (sid(20),), 3)
    assert ScheduledJobRegistry(queue=services.queue).get_job_ids() == [f"{sid(0)}-later"]
    # Replayed, nothing is enqueued again.
    assert pump.start_effects(services.queue, effects) == 0
    assert services.queue.count == 3


def test_when_enqueueing_fails_the_marks_are_taken_back_for_the_replay(services, monkeypatch):
    effects = [(sid(n), Effect.of(CallerLeft(), "finished")) for n in range(3)]

    def refuse(*_args, **_kwargs):
        raise redis.ConnectionError("lost")

    with monkeypatch.context() as patched:
        patched.setattr(Queue, "enqueue_many", refuse)
        with pytest.raises(redis.ConnectionError):
            pump.start_effects(services.queue, effects)
    assert services.queue.count == 0
    assert pump.start_effects(services.queue, effects) == 3
    [job] = map(services.queue.fetch_job, services.queue.job_ids)
    assert [job_id for job_id, _name, _args in job.args[0]] == [
        f"{sid(n)}-finished" for n in range(3)]


# --- the worker runs jobs in its own process, each within its time-out -------------------------

def which_process() -> int:
    """A job: the process it ran in."""
    return os.getpid()


def sleeps(seconds: float) -> None:
    """A job that outlives its time-out."""
    time.sleep(seconds)


def test_the_worker_runs_each_job_in_its_own_process_and_ends_one_that_overruns(services):
    queue = Queue(QUEUE_NAME, connection=services.worker_redis)
    first = queue.enqueue(which_process)
    second = queue.enqueue(which_process)
    hung = queue.enqueue(sleeps, 30, job_timeout=1)
    started = time.monotonic()
    worker = PatientWorker([QUEUE_NAME], connection=services.worker_redis,
                           outage=Outage("test worker"))
    worker.work(burst=True)
    assert time.monotonic() - started < 20
    assert (first.latest_result().return_value, second.latest_result().return_value) == (
        os.getpid(), os.getpid())
    assert hung.get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in hung.latest_result().exc_string
