"""Moves call events from the Redis stream into the call log and starts the jobs they ask for."""

from __future__ import annotations

import logging
import os
import re
import socket
from datetime import timedelta

import redis
from rq import Queue, Retry

from store.call_events import PUMP_KICK_KEY, STREAM_KEY, Batch, Effect, drain_spool
from store.call_log import CallLog
from store.db import transaction
from workers.context import services

log = logging.getLogger(__name__)

GROUP = "call-log"
CLAIM_IDLE_MS = 60_000
EFFECT_MARK_KEY = "callflow:effect:{job_id}"
EFFECT_MARK_TTL = 7 * 86400
EFFECT_RETRY = Retry(max=3, interval=[2, 10, 30])


def _ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def job_id_for(call_sid: str, key: str) -> str:
    """The same effect of the same call always has the same job id (RQ allows [\\w-] only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{call_sid}-{key}")


def start_effect(queue: Queue, call_sid: str, effect: Effect) -> bool:
    """Enqueue an effect's job once, however often its batch is replayed."""
    job_id = job_id_for(call_sid, effect.key)
    mark = EFFECT_MARK_KEY.format(job_id=job_id)
    if not queue.connection.set(mark, b"1", nx=True, ex=EFFECT_MARK_TTL):
        return False
    try:
        if effect.delay_seconds:
            queue.enqueue_in(timedelta(seconds=effect.delay_seconds), effect.func, *effect.args,
                             job_id=job_id, retry=EFFECT_RETRY, result_ttl=3600)
        else:
            queue.enqueue(effect.func, *effect.args, job_id=job_id, retry=EFFECT_RETRY,
                          result_ttl=3600)
    except Exception:
        queue.connection.delete(mark)
        raise
    return True


def pump_events(batch_size: int = 500, max_rounds: int = 200) -> int:
    """Ingest pending events (and any a crashed worker left), once each; returns events seen."""
    s = services()
    client = s.worker_redis
    drain_spool(s.settings.var_dir / "spool", client)
    _ensure_group(client)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    seen = 0
    looked_again = False
    for _ in range(max_rounds):
        _next, claimed, *_ = client.xautoclaim(STREAM_KEY, GROUP, consumer, CLAIM_IDLE_MS,
                                               "0-0", count=batch_size)
        fresh = client.xreadgroup(GROUP, consumer, {STREAM_KEY: ">"}, count=batch_size)
        entries = list(claimed) + [entry for _stream, items in fresh for entry in items]
        if not entries:
            if looked_again:
                break
            # Let the next event kick a fresh pump, then look once more: an event written
            # before this found the kick taken and is read now; one written after kicks anew.
            client.delete(PUMP_KICK_KEY)
            looked_again = True
            continue
        looked_again = False
        batches = [Batch.decode(fields) for _id, fields in entries if fields]
        with transaction(s.sessions) as session:
            CallLog(session).record(batches)
        for batch in batches:
            for effect in batch.effects:
                start_effect(s.queue, batch.call_sid, effect)
        ids = [entry_id for entry_id, _ in entries]
        pipe = client.pipeline(transaction=False)
        pipe.xack(STREAM_KEY, GROUP, *ids)
        pipe.xdel(STREAM_KEY, *ids)
        pipe.execute()
        seen += sum(len(b.events) for b in batches)
    else:
        client.delete(PUMP_KICK_KEY)  # stopped with work left: the next event kicks a pump
    return seen
