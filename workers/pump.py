"""Moves call events from the Redis stream into the call log and starts the jobs they ask for."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

import redis
from rq import Queue
from rq.queue import EnqueueData

from config import clock
from config.clock import local_today
from config.logging_setup import call_sid_bound
from store.call_events import STREAM_KEY, Batch, Effect, drain_spool, job_id_for
from store.call_log import CallLog
from store.db import transaction
from store.db_spool import DatabaseSpool
from store.dead_letters import DeadLetters, error_type, fields_of, is_about_the_data
from store.redis_client import Outage, wait_for_redis
from workers.calls import (
    EFFECT_RESULT_TTL,
    EFFECT_RETRY,
    EFFECT_THREADS,
    JOBS_BY_NAME,
    run_effects,
)
from workers.context import services

log = logging.getLogger(__name__)

GROUP = "call-log"
CLAIM_IDLE_MS = 60_000
EFFECT_MARK_KEY = "callflow:effect:{job_id}"
EFFECT_MARK_TTL = 7 * 86400
# A pump round's effects due now share a job this many at a time: rq's cost of a job (about
# ten Redis round trips) is paid once for them, different calls' effects run side by side in
# the job's threads, and a big round still spreads over the workers.
EFFECTS_PER_JOB = EFFECT_THREADS
CHORES_EVERY_SECONDS = 5.0
RETRY_SECONDS = 2.0
# After a round that did not fill a batch, the standing pump lets the stream gather this long
# (from the round's start) before reading again: under load a round then carries tens of calls
# instead of one or two, and its fixed cost (a transaction, four Redis round trips) is shared;
# idle, the blocked read still takes an event the moment it arrives.
GATHER_SECONDS = 0.05


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def start_effect(queue: Queue, call_sid: str, effect: Effect) -> bool:
    """Enqueue an effect's job once, however often its batch is replayed."""
    return start_effects(queue, [(call_sid, effect)]) == 1


def start_effects(queue: Queue, effects: Iterable[tuple[str, Effect]]) -> int:
    """Enqueue each (CallSid, effect)'s job once, however often its batch is replayed, in two
    round trips whatever their number: the marks (SET NX), then the jobs of those newly marked
    in one pipeline. Effects due now go EFFECTS_PER_JOB to a job (run_effects), one alone under
    its own id. Returns how many effects were enqueued; if enqueueing fails, the marks are taken
    back (so a replay enqueues them) and the error raised."""
    wanted: dict[str, tuple[str, Effect]] = {}
    for call_sid, effect in effects:
        wanted.setdefault(job_id_for(call_sid, effect.key), (call_sid, effect))
    if not wanted:
        return 0
    marks = {job_id: EFFECT_MARK_KEY.format(job_id=job_id) for job_id in wanted}
    pipe = queue.connection.pipeline(transaction=False)
    for mark in marks.values():
        pipe.set(mark, b"1", nx=True, ex=EFFECT_MARK_TTL)
    marked = [job_id for job_id, was_set in zip(wanted, pipe.execute(), strict=True) if was_set]
    if not marked:
        return 0
    try:
        with queue.connection.pipeline() as pipe:
            _enqueue(queue, pipe, [(job_id, *wanted[job_id]) for job_id in marked])
            pipe.execute()
    except Exception:
        queue.connection.delete(*(marks[job_id] for job_id in marked))
        raise
    return len(marked)


def _enqueue(queue: Queue, pipe: redis.client.Pipeline,
             effects: list[tuple[str, str, Effect]]) -> None:
    """Add the jobs of these (job id, CallSid, effect) to the pipeline."""
    now: list[EnqueueData] = []
    together: list[tuple[str, str, tuple]] = []
    for job_id, call_sid, effect in effects:
        job = JOBS_BY_NAME.get(effect.func)
        # A typed effect's job takes the CallSid first; an effect written before effects were
        # typed names its job's dotted path and carries the CallSid among its arguments.
        func, args = (job, (call_sid, *effect.args)) if job else (effect.func, effect.args)
        if effect.delay_seconds:
            queue.enqueue_in(timedelta(seconds=effect.delay_seconds), func, *args, job_id=job_id,
                             retry=EFFECT_RETRY, result_ttl=EFFECT_RESULT_TTL, pipeline=pipe)
        elif job:
            together.append((job_id, effect.func, args))
        else:
            now.append(Queue.prepare_data(func, args, job_id=job_id, retry=EFFECT_RETRY,
                                          result_ttl=EFFECT_RESULT_TTL))
    for start in range(0, len(together), EFFECTS_PER_JOB):
        group = together[start:start + EFFECTS_PER_JOB]
        if len(group) == 1:
            [(job_id, name, args)] = group
            now.append(Queue.prepare_data(JOBS_BY_NAME[name], args, job_id=job_id,
                                          retry=EFFECT_RETRY, result_ttl=EFFECT_RESULT_TTL))
        else:
            now.append(Queue.prepare_data(
                run_effects, (group,), job_id=f"effects-{group[0][0]}", retry=EFFECT_RETRY,
                result_ttl=EFFECT_RESULT_TTL, description=f"{len(group)} effects of calls"))
    if now:
        queue.enqueue_many(now, pipeline=pipe)


def pump_events(batch_size: int = 500, max_rounds: int = 200) -> int:
    """Ingest what is pending (and any events a crashed pump left), once each; returns events
    seen. The periodic safety net behind the standing pump, and the tests' way to run it: it
    stops at the first round that did not fill a batch, so that under steady load (a few new
    events every round) it does not stay on as one more pump."""
    s = services()
    consumer = _consumer()
    seen = 0
    for _ in range(max_rounds):
        entries, events = _pump_round(s, consumer, batch_size, chores=True)
        seen += events
        if entries < batch_size:
            break
    return seen


def run_pump(stop: threading.Event, batch_size: int = 500, block_ms: int = 1000) -> None:
    """The standing pump: waits on the stream and ingests events as they arrive, until stop.

    Between waits, at most every few seconds and at once after a failed round, it does the
    chores: replays the disk spool, retries what it read but could not record, and claims what
    a crashed pump left; an idle pump costs Redis one blocked read a second.
    """
    s = services()
    consumer = _consumer()
    chores_due = 0.0
    redis_outage = Outage("callflow pump", log)
    failing: str | None = None
    while not stop.is_set():
        try:
            started = time.monotonic()
            chores = started >= chores_due
            if chores:
                # A register write that died between its commit and the routing cache leaves
                # the cache marked incomplete (calls then read the database): rebuild it soon.
                s.register.sync_cache(local_today(s.settings.tz))
            taken, _events = _pump_round(s, consumer, batch_size, chores=chores,
                                         block_ms=block_ms)
            if chores:
                chores_due = time.monotonic() + CHORES_EVERY_SECONDS
            if 0 < taken < batch_size:
                stop.wait(max(0.0, started + GATHER_SECONDS - time.monotonic()))
        except (redis.RedisError, OSError) as error:
            # What was read stays pending and is claimed again once Redis is back.
            redis_outage.failed(error)
            wait_for_redis(s.worker_redis, redis_outage, stop)
            chores_due = 0.0
        except Exception as error:
            # The database is away: logged once (by type: its message may hold call data).
            if failing is None:
                log.warning("pump: the call log cannot be written (%s); retrying every %s s",
                            error_type(error), RETRY_SECONDS)
            failing = error_type(error)
            stop.wait(RETRY_SECONDS)
            chores_due = 0.0
        else:
            if failing is not None:
                log.warning("pump: the call log can be written again")
                failing = None


def _pump_round(s, consumer: str, batch_size: int, *, chores: bool,
                block_ms: int | None = None) -> tuple[int, int]:
    """One turn of the stream loop: with chores, the spool and what is left pending (this
    pump's own and, once idle long enough, a crashed pump's), then what is new, waiting up to
    block_ms for it. Returns the entries taken and the events among them."""
    client = s.worker_redis
    entries: list = []
    events = 0
    if chores:
        _ensure_group(client)
        drain_spool(s.settings.var_dir / "spool", client)
        # What web processes kept in the database while Redis was down, every host's.
        DatabaseSpool(s.sessions, clock.now_utc).drain(client)
        mine = client.xreadgroup(GROUP, consumer, {STREAM_KEY: "0"}, count=batch_size)
        _next, claimed, *_ = client.xautoclaim(STREAM_KEY, GROUP, consumer, CLAIM_IDLE_MS,
                                               "0-0", count=batch_size)
        left = dict([entry for _stream, items in mine or () for entry in items] + claimed)
        if left:
            entries += left.items()
            events += _ingest(s, client, list(left.items()))
    fresh = client.xreadgroup(GROUP, consumer, {STREAM_KEY: ">"}, count=batch_size,
                              block=block_ms)
    new = [entry for _stream, items in fresh or () for entry in items]
    if new:
        entries += new
        events += _ingest(s, client, new)
    return len(entries), events


def _consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _ingest(s, client: redis.Redis, entries: list) -> int:
    """Record entries in the call log, start their effects, then acknowledge and drop them.

    A round is one transaction. If the database refuses it for what is in it, each entry is
    tried in a transaction of its own: the good ones land, and each refused one is set aside as
    a dead letter, so that one bad value never holds up the entries behind it. Any other error
    (the database or Redis away) is raised, leaving the entries pending to be retried.
    """
    batches: dict[str, Batch] = {}
    unreadable: list[tuple[str, dict, str | None, Exception]] = []
    for entry_id, fields in entries:
        if not fields:
            continue
        try:
            batches[entry_id] = Batch.decode(fields)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            unreadable.append((entry_id, fields, _sid_of(fields), error))
    refused = list(unreadable)
    try:
        with transaction(s.sessions) as session:
            CallLog(session).record(batches.values())
    except Exception as error:
        if not is_about_the_data(error):
            raise
        log.warning("the call log refused a round of %d entries (%s); recording them one by one",
                    len(batches), error_type(error))
        refused += _record_one_by_one(s, batches, dict(entries))
    if refused:
        order = {entry_id: n for n, (entry_id, _fields) in enumerate(entries)}
        refused.sort(key=lambda each: order[each[0]])
        with transaction(s.sessions) as session:
            letters = DeadLetters(session)
            for entry_id, fields, sid, error in refused:
                letters.set_aside(_text(entry_id), fields, sid, error, clock.now_utc())
        log.error("%d call-event entries set aside as dead letters (callflow events "
                  "dead-letters lists them)", len(refused))
    # The caller still needs their jobs (an agent dialled, the wait bounded) even when the call
    # log refused the entry; each starts once, by its key, all of the round's in one pipeline.
    start_effects(s.queue, [(batch.call_sid, effect) for batch in batches.values()
                            for effect in batch.effects])
    ids = [entry_id for entry_id, _ in entries]
    pipe = client.pipeline(transaction=False)
    pipe.xack(STREAM_KEY, GROUP, *ids)
    pipe.xdel(STREAM_KEY, *ids)
    pipe.execute()
    return sum(len(b.events) for b in batches.values())


def _record_one_by_one(s, batches: dict[str, Batch],
                       fields_by_id: dict) -> list[tuple[str, dict, str | None, Exception]]:
    refused = []
    for entry_id, batch in batches.items():
        try:
            with call_sid_bound(batch.call_sid), transaction(s.sessions) as session:
                CallLog(session).record([batch])
        except Exception as error:
            if not is_about_the_data(error):
                raise
            refused.append((entry_id, fields_by_id[entry_id], batch.call_sid, error))
    return refused


def retry_dead_letters(ids: list[int] | None) -> tuple[int, int]:
    """Record dead letters again (all when ids is None) through the same path as the pump,
    removing each that lands; returns (recorded, still refused)."""
    s = services()
    with s.sessions() as session:
        letters = [(letter.id, fields_of(letter)) for letter in DeadLetters(session).taken(ids)]
    recorded = failed = 0
    for letter_id, fields in letters:
        try:
            batch = Batch.decode(fields)
            with transaction(s.sessions) as session:
                CallLog(session).record([batch])
                DeadLetters(session).remove(letter_id)
        except Exception as error:
            if not is_about_the_data(error):
                raise
            with transaction(s.sessions) as session:
                DeadLetters(session).failed_again(letter_id, error)
            failed += 1
            continue
        start_effects(s.queue, [(batch.call_sid, effect) for effect in batch.effects])
        recorded += 1
    return recorded, failed


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _sid_of(fields: dict) -> str | None:
    value = fields.get(b"sid", fields.get("sid"))
    return _text(value) if value else None
