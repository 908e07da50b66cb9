"""Events reach the call log exactly once, whatever order and however often they arrive."""

import threading
import time
from datetime import timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from callflow.decision import Event
from store.call_events import STREAM_KEY, Batch, Effect, drain_spool
from store.call_log import CallLog
from store.models import Call, CallEvent
from tests.conftest import NOW
from workers import pump
from workers.context import use_services

SID = "CA" + "c" * 32


@pytest.fixture
def worker_services(services):
    use_services(services)
    yield services
    use_services(None)


def batch(*events, effects=()):
    return Batch(SID, tuple(events), tuple(effects))


def event(kind, key, minutes=0, **detail):
    return Event(kind, key, NOW + timedelta(minutes=minutes), detail)


def counts(services):
    with services.sessions() as session:
        return (session.scalar(select(func.count(Call.id))),
                session.scalar(select(func.count(CallEvent.id))))


def test_duplicate_and_out_of_order_callbacks_land_once(worker_services):
    s = worker_services
    completed = event("status", "status:completed", 5, status="completed", duration=300)
    received = event("received", "received", 0, **{"from": "+447700900123", "withheld": False})
    s.event_sink.emit(batch(completed))
    s.event_sink.emit(batch(completed))
    s.event_sink.emit(batch(received, event("decision", "decision", outcome="centre")))
    assert pump.pump_events() == 4
    assert counts(s) == (1, 3)
    with s.sessions() as session:
        call = session.scalar(select(Call))
    assert (call.status, call.duration_seconds, call.decision) == ("completed", 300, "centre")
    assert call.started_at == NOW and call.ended_at == NOW + timedelta(minutes=5)
    assert s.redis.xlen(STREAM_KEY) == 0


def test_an_effect_is_started_once_however_often_its_batch_is_replayed(worker_services):
    s = worker_services
    effect = Effect("workers.calls.call_finished", "finished", (SID,))
    for _ in range(3):
        s.event_sink.emit(batch(event("status", "status:completed", status="completed"),
                                effects=(effect,)))
    pump.pump_events()
    assert s.queue.job_ids.count(f"{SID}-finished") == 1
    SimpleWorker([s.queue], connection=s.worker_redis).work(burst=True)
    assert s.queue.fetch_job(f"{SID}-finished").get_status() == "finished"


def test_events_a_crashed_worker_took_are_claimed_and_recorded(worker_services, monkeypatch):
    s = worker_services
    s.event_sink.emit(batch(event("received", "received", **{"from": None, "withheld": True})))
    pump._ensure_group(s.worker_redis)
    taken = s.worker_redis.xreadgroup(pump.GROUP, "crashed-worker", {STREAM_KEY: ">"}, count=10)
    assert taken, "the crashed worker read the entry and never acknowledged it"
    assert pump.pump_events() == 0, "not yet idle long enough to be claimed"
    monkeypatch.setattr(pump, "CLAIM_IDLE_MS", 0)
    assert pump.pump_events() == 1
    assert counts(s) == (1, 1)


def test_spooled_events_reach_the_call_log_once_redis_is_back(worker_services):
    s = worker_services
    s.event_sink.spool(batch(event("received", "received", **{"from": None, "withheld": True})))
    spool = s.settings.var_dir / "spool"
    assert list(spool.glob("*.jsonl"))
    assert pump.pump_events() == 1
    assert not list(spool.glob("*")), "the spool file is gone once it reached Redis"
    assert drain_spool(spool, s.worker_redis) == 0
    assert counts(s) == (1, 1)


def test_a_database_failure_keeps_events_pending_for_the_next_run(worker_services, monkeypatch):
    s = worker_services
    s.event_sink.emit(batch(event("received", "received", **{"from": None, "withheld": True})))

    def failing(self, batches):
        raise RuntimeError("database down")

    monkeypatch.setattr("store.call_log.CallLog.record", failing)
    with pytest.raises(RuntimeError):
        pump.pump_events()
    monkeypatch.undo()
    monkeypatch.setattr(pump, "CLAIM_IDLE_MS", 0)
    assert pump.pump_events() == 1
    assert counts(s) == (1, 1)


def test_the_standing_pump_takes_events_as_they_arrive(worker_services):
    s = worker_services
    stop = threading.Event()
    running = threading.Thread(target=pump.run_pump, args=(stop,), kwargs={"block_ms": 100})
    running.start()
    try:
        effect = Effect("workers.calls.call_finished", "finished", (SID,))
        s.event_sink.emit(batch(event("received", "received", **{"from": "+447700900123"}),
                                effects=(effect,)))
        deadline = time.monotonic() + 10
        while counts(s) != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert counts(s) == (1, 1)
        assert f"{SID}-finished" in s.queue.job_ids
        assert s.redis.xlen(STREAM_KEY) == 0
    finally:
        stop.set()
        running.join(timeout=5)
    assert not running.is_alive(), "the pump stops within a blocked read of being told"


def test_the_standing_pump_rides_out_a_database_failure(worker_services, monkeypatch):
    s = worker_services
    failing = iter([RuntimeError("database away")])

    def record_or_fail(self, batches):
        for error in failing:
            raise error
        return real_record(self, batches)

    real_record = CallLog.record
    monkeypatch.setattr(CallLog, "record", record_or_fail)
    monkeypatch.setattr(pump, "RETRY_SECONDS", 0.05)
    stop = threading.Event()
    running = threading.Thread(target=pump.run_pump, args=(stop,), kwargs={"block_ms": 100})
    s.event_sink.emit(batch(event("received", "received")))
    running.start()
    try:
        deadline = time.monotonic() + 10
        while counts(s) != (1, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert counts(s) == (1, 1)
    finally:
        stop.set()
        running.join(timeout=5)


def test_a_call_whose_first_webhook_was_lost_still_starts_at_its_earliest_event(worker_services):
    s = worker_services
    s.event_sink.emit(batch(event("status", "status:completed", 9, status="completed")))
    pump.pump_events()
    s.event_sink.emit(batch(event("connected", "connected:7", 2, staff_id=None)))
    pump.pump_events()
    with s.sessions() as session:
        assert session.scalar(select(Call.started_at)) == NOW + timedelta(minutes=2)
    s.event_sink.emit(batch(event("received", "received", 0, **{"from": "+447700900123"})))
    s.event_sink.emit(batch(event("status", "status:ringing", 5, status="ringing")))
    pump.pump_events()
    with s.sessions() as session:
        call = session.scalar(select(Call))
    assert (call.started_at, call.from_number) == (NOW, "+447700900123")
