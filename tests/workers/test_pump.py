"""Events reach the call log exactly once, whatever order and however often they arrive."""

import threading
import time
from datetime import timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from callflow.effects import CallerLeft
from callflow.events import Event
from store.call_events import STREAM_KEY, Batch, Effect, drain_spool
from store.call_log import CallLog
from store.db import transaction
from store.models import Call, CallEvent, DeadLetter, Staff
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


def test_the_safety_net_stops_once_it_has_caught_up_while_calls_keep_coming(worker_services,
                                                                              monkeypatch):
    # The periodic pump_events runs beside the standing pumps: under steady load a round always
    # finds a few new events, and it must not stay on as a third pump (doing its chores every
    # round) until its round limit.
    s = worker_services
    rounds = []
    one_round = pump._pump_round

    def round_while_calls_arrive(*args, **kwargs):
        rounds.append(one_round(*args, **kwargs))
        s.event_sink.emit(batch(event("status", f"status:ringing:{len(rounds)}",
                                      status="ringing")))
        return rounds[-1]

    monkeypatch.setattr(pump, "_pump_round", round_while_calls_arrive)
    s.event_sink.emit(batch(event("status", "status:ringing:0", status="ringing")))
    assert pump.pump_events(batch_size=10) == 1
    assert rounds == [(1, 1)]
    # A backlog bigger than a round is still taken round after round.
    monkeypatch.setattr(pump, "_pump_round", one_round)
    for n in range(25):
        s.event_sink.emit(batch(event("status", f"status:backlog:{n}", status="ringing")))
    assert pump.pump_events(batch_size=10) == 26


def test_an_effect_is_started_once_however_often_its_batch_is_replayed(worker_services):
    s = worker_services
    effect = Effect.of(CallerLeft(), "finished")
    for _ in range(3):
        s.event_sink.emit(batch(event("status", "status:completed", status="completed"),
                                effects=(effect,)))
    pump.pump_events()
    assert s.queue.job_ids.count(f"{SID}-finished") == 1
    job = s.queue.fetch_job(f"{SID}-finished")
    assert (job.func_name, job.args) == ("workers.calls.call_finished", (SID,))
    SimpleWorker([s.queue], connection=s.worker_redis).work(burst=True)
    assert s.queue.fetch_job(f"{SID}-finished").get_status() == "finished"


def test_an_effect_written_before_effects_were_typed_still_starts_its_job(worker_services):
    s = worker_services
    effect = Effect("workers.calls.call_finished", "finished", (SID,))
    s.event_sink.emit(batch(event("status", "status:completed", status="completed"),
                            effects=(effect,)))
    pump.pump_events()
    job = s.queue.fetch_job(f"{SID}-finished")
    assert (job.func_name, job.args) == ("workers.calls.call_finished", (SID,))


def test_a_delayed_effect_written_before_effects_were_typed_is_still_scheduled(worker_services):
    s = worker_services
    effect = Effect("workers.calls.offer_voicemail_if_waiting", "max-wait", (SID,), 300)
    s.event_sink.emit(batch(event("status", "status:ringing", status="ringing"),
                            effects=(effect,)))
    pump.pump_events()
    assert s.queue.job_ids == []
    assert s.queue.scheduled_job_registry.get_job_ids() == [f"{SID}-max-wait"]
    job = s.queue.fetch_job(f"{SID}-max-wait")
    assert (job.func_name, job.args) == ("workers.calls.offer_voicemail_if_waiting", (SID,))


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
    s.event_sink.spool_to_disk(batch(event("received", "received",
                                          **{"from": None, "withheld": True})))
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
        effect = Effect.of(CallerLeft(), "finished")
        s.event_sink.emit(batch(event("received", "received", **{"from": "+447700900123"}),
                                effects=(effect,)))
        deadline = time.monotonic() + 10
        # The round commits its rows, starts the effects' jobs, then drops the entry: wait for
        # all three.
        while (counts(s) != (1, 1) or f"{SID}-finished" not in s.queue.job_ids
               or s.redis.xlen(STREAM_KEY)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert counts(s) == (1, 1)
        assert f"{SID}-finished" in s.queue.job_ids
        assert s.redis.xlen(STREAM_KEY) == 0
    finally:
        stop.set()
        running.join(timeout=5)
    assert not running.is_alive(), "the pump stops within a blocked read of being told"


def test_under_load_the_standing_pump_lets_the_stream_gather_between_rounds(worker_services,
                                                                              monkeypatch):
    s = worker_services
    rounds: list[int] = []
    real_ingest = pump._ingest

    def counting(services, client, entries):
        rounds.append(len(entries))
        return real_ingest(services, client, entries)

    monkeypatch.setattr(pump, "_ingest", counting)
    monkeypatch.setattr(pump, "GATHER_SECONDS", 0.5)
    stop = threading.Event()
    running = threading.Thread(target=pump.run_pump, args=(stop,), kwargs={"block_ms": 100})
    running.start()
    try:
        s.event_sink.emit(batch(event("received", "received")))
        deadline = time.monotonic() + 10
        while not rounds and time.monotonic() < deadline:
            time.sleep(0.01)
        # Ten more while the pump pauses after its one-entry round: they make one round.
        for n in range(10):
            s.event_sink.emit(batch(event("status", f"status:ringing:{n}", n, status="ringing")))
        while sum(rounds) < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        running.join(timeout=5)
    assert rounds == [1, 10]


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


# --- values the database cannot store never jam the call log (issue item 1) --------------------

SIP_TO = "sip:reception@example.sip.twilio.com;transport=tls"


def ordinary(n, minutes=0):
    sid = f"CA{n:032d}"
    return Batch(sid, (event("received", "received", minutes,
                             **{"from": "+447700900123", "to": "+441632960000",
                                "withheld": False}),))


def calls_by_sid(services):
    with services.sessions() as session:
        return {c.call_sid: c for c in session.scalars(select(Call))}


def dead_letters(services):
    with services.sessions() as session:
        return session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()


def test_values_twilio_may_send_are_stored_whole_or_cleaned_and_block_nothing(worker_services):
    s = worker_services
    sip, nul, overflow = (f"CA{'1' * 31}{n}" for n in (1, 2, 3))
    s.event_sink.emit(Batch(sip, (event("received", "received", **{
        "from": None, "to": SIP_TO, "withheld": False}),)))
    s.event_sink.emit(Batch(nul, (event("received", "received", **{
        "from": None, "to": "+44163296\x000000", "withheld": False}),)))
    s.event_sink.emit(Batch(overflow, (event("status", "status:completed", 4,
                                             status="completed", duration=99999999999),)))
    s.event_sink.emit(ordinary(1))
    pump.pump_events()
    calls = calls_by_sid(s)
    assert set(calls) == {sip, nul, overflow, f"CA{1:032d}"}
    assert calls[sip].to_number == SIP_TO
    assert calls[nul].to_number == "+441632960000"
    assert (calls[overflow].status, calls[overflow].duration_seconds) == ("completed", None)
    with s.sessions() as session:
        detail = session.scalar(select(CallEvent.detail).where(CallEvent.call_sid == nul))
    assert detail["to"] == "+441632960000"
    assert dead_letters(s) == []
    assert s.redis.xlen(STREAM_KEY) == 0


def refused_batches():
    """Entries the database refuses whatever the cleaning: an agent that is not on the staff
    table, a time without a zone, and an entry that is not a batch at all."""
    unknown_agent = Batch("CA" + "d" * 32, (event("connected", "connected:1", staff_id=987654),))
    naive = Batch("CA" + "e" * 32, (Event("received", "received", NOW.replace(tzinfo=None),
                                          {"withheld": True}),))
    return unknown_agent, naive


def test_an_entry_the_database_refuses_is_set_aside_and_the_ones_behind_it_land(worker_services):
    s = worker_services
    unknown_agent, naive = refused_batches()
    s.event_sink.emit(unknown_agent)
    s.event_sink.emit(ordinary(1))
    s.event_sink.emit(naive)
    s.redis.xadd(STREAM_KEY, {"sid": "CA" + "f" * 32, "events": "[{not json"})
    s.event_sink.emit(ordinary(2))
    assert pump.pump_events() == 4
    assert set(calls_by_sid(s)) == {f"CA{1:032d}", f"CA{2:032d}"}
    letters = dead_letters(s)
    assert [letter.call_sid for letter in letters] == [
        unknown_agent.call_sid, naive.call_sid, "CA" + "f" * 32]
    assert [letter.error_type for letter in letters] == [
        "IntegrityError", "StatementError", "JSONDecodeError"]
    assert all(letter.error and "987654" not in letter.error for letter in letters)
    assert s.redis.xlen(STREAM_KEY) == 0
    assert s.worker_redis.xpending(STREAM_KEY, pump.GROUP)["pending"] == 0
    assert pump.pump_events() == 0
    assert len(dead_letters(s)) == 3, "set aside once, not again on the next run"


def test_a_refused_entry_still_starts_its_jobs(worker_services):
    s = worker_services
    unknown_agent, _naive = refused_batches()
    effect = Effect.of(CallerLeft(), "finished")
    s.event_sink.emit(Batch(unknown_agent.call_sid, unknown_agent.events, (effect,)))
    pump.pump_events()
    assert f"{unknown_agent.call_sid}-finished" in s.queue.job_ids
    assert len(dead_letters(s)) == 1


def test_retrying_a_dead_letter_records_it_once_and_removes_it(worker_services, staff):
    s = worker_services
    unknown_agent, naive = refused_batches()
    s.event_sink.emit(unknown_agent)
    s.event_sink.emit(naive)
    pump.pump_events()
    first, second = dead_letters(s)
    with transaction(s.sessions) as session:
        session.add(Staff(id=987654, email="late@example.org", name="Late", role="agent",
                          created_at=NOW))
    assert pump.retry_dead_letters([first.id]) == (1, 0)
    assert [letter.id for letter in dead_letters(s)] == [second.id]
    assert calls_by_sid(s)[unknown_agent.call_sid].agent_id == 987654
    assert pump.retry_dead_letters(None) == (0, 1), "still refused: kept, attempts counted"
    (kept,) = dead_letters(s)
    assert (kept.id, kept.attempts) == (second.id, 2)
    assert kept.failed_at == second.failed_at, "retention counts from the first failure"
    assert counts(s) == (1, 1)


def test_the_standing_pump_sets_a_refused_entry_aside_and_keeps_going(worker_services):
    s = worker_services
    unknown_agent, _naive = refused_batches()
    stop = threading.Event()
    running = threading.Thread(target=pump.run_pump, args=(stop,), kwargs={"block_ms": 100})
    running.start()
    try:
        s.event_sink.emit(unknown_agent)
        s.event_sink.emit(ordinary(1))
        deadline = time.monotonic() + 10
        while (f"CA{1:032d}" not in calls_by_sid(s) or not dead_letters(s)) and (
                time.monotonic() < deadline):
            time.sleep(0.02)
        assert set(calls_by_sid(s)) == {f"CA{1:032d}"}
        assert len(dead_letters(s)) == 1
    finally:
        stop.set()
        running.join(timeout=5)


# --- final call states hold, whatever order Twilio calls back in (issue item 5) ----------------


def status(name, minutes, sequence=None, duration=None):
    return batch(event("status", f"status:{name}", minutes, status=name, duration=duration,
                       sequence=sequence))


def summary(services):
    with services.sessions() as session:
        call = session.scalar(select(Call))
    return call.status, call.ended_at, call.duration_seconds


@pytest.mark.parametrize("one_round", [True, False])
def test_a_late_ringing_does_not_reopen_a_completed_call(worker_services, one_round):
    s = worker_services
    for name, minutes, duration in (("completed", 5, 300), ("ringing", 6, None),
                                    ("in-progress", 7, None)):
        s.event_sink.emit(status(name, minutes, duration=duration))
        if not one_round:
            pump.pump_events()
    pump.pump_events()
    assert summary(s) == ("completed", NOW + timedelta(minutes=5), 300)


def test_between_sequenced_callbacks_the_higher_sequence_wins(worker_services):
    s = worker_services
    s.event_sink.emit(status("in-progress", 2, sequence=2))
    pump.pump_events()
    s.event_sink.emit(status("ringing", 3, sequence=1))
    pump.pump_events()
    assert summary(s) == ("in-progress", None, None)
    s.event_sink.emit(status("completed", 9, sequence=4, duration=60))
    s.event_sink.emit(status("busy", 8, sequence=3))
    pump.pump_events()
    assert summary(s) == ("completed", NOW + timedelta(minutes=9), 60)


def test_a_final_status_without_a_sequence_wins_over_a_sequenced_one(worker_services):
    s = worker_services
    s.event_sink.emit(status("in-progress", 2, sequence=7))
    pump.pump_events()
    s.event_sink.emit(status("no-answer", 3))
    pump.pump_events()
    s.event_sink.emit(status("ringing", 4, sequence=9))
    pump.pump_events()
    assert summary(s) == ("no-answer", NOW + timedelta(minutes=3), None)


def test_a_lost_database_connection_sets_nothing_aside_and_keeps_entries_pending(
        worker_services, monkeypatch):
    s = worker_services
    s.event_sink.emit(ordinary(1))

    def lost(self, batches):
        raise OperationalError("INSERT ...", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(CallLog, "record", lost)
    with pytest.raises(OperationalError):
        pump.pump_events()
    monkeypatch.undo()
    assert dead_letters(s) == []
    assert s.worker_redis.xpending(STREAM_KEY, pump.GROUP)["pending"] == 1
    monkeypatch.setattr(pump, "CLAIM_IDLE_MS", 0)
    assert pump.pump_events() == 1
    assert set(calls_by_sid(s)) == {f"CA{1:032d}"}


def test_the_standing_pump_completes_a_routing_cache_a_dead_register_write_left_incomplete(
        worker_services, monkeypatch):
    s = worker_services
    monkeypatch.setattr("store.routing_cache.STALE_AFTER_MS", 500)  # a writer presumed dead
    s.register.rebuild_cache(NOW.date())
    s.routing_cache.hold()  # a write that marked the cache, then died before its release
    assert s.routing_cache.version() is None
    stop = threading.Event()
    running = threading.Thread(target=pump.run_pump, args=(stop,), kwargs={"block_ms": 100})
    running.start()
    try:
        deadline = time.monotonic() + 60
        while s.routing_cache.version() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.routing_cache.version() is not None
    finally:
        stop.set()
        running.join(timeout=5)
