"""Call events on their way to the call log: a Redis stream, or a local spool when Redis is down."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import redis

from callflow.effects import CallEffect
from callflow.events import Event
from store.circuit import CircuitOpen
from store.live_call import (
    INDEX_LIVE_LUA,
    LIVE_TTL_SECONDS,
    WRITE_LIVE_LUA,
    LiveCall,
    live_key,
)
from store.routing_cache import CACHE_KEY, READY_FIELD

log = logging.getLogger(__name__)

STREAM_KEY = "callflow:events"
ORPHAN_AFTER_SECONDS = 60
# After the database spool fails, batches go straight to disk for this long: a database that is
# down too must not add its connect time-out to every webhook.
DATABASE_SPOOL_PAUSE_SECONDS = 5.0


# One round trip for a request's writes: the stream entry and the live state. The standing pump
# (workers/pump.py) is blocked on the stream and takes the entry at once.
# KEYS: stream, live hash. ARGV: sid, events, effects, live TTL, then live field/value pairs.
_EMIT = WRITE_LIVE_LUA + """
redis.call('XADD', KEYS[1], '*', 'sid', ARGV[1], 'events', ARGV[2], 'effects', ARGV[3])
write_live(KEYS[2], ARGV[4], 5)
return 0
"""

# The register check and the writes in the same round trip, for a caller the request has decided
# as if they were not on the register (most callers are not). KEYS as _EMIT, then the routing
# hash; ARGV as _EMIT, then the number. Returns the number's routing value (bytes) when it is on
# the register and -1 when the hash is incomplete, having written nothing; else 0, as _EMIT.
_EMIT_UNLESS_LISTED = """
local number = table.remove(ARGV)
local found = redis.call('HMGET', KEYS[3], number, '""" + READY_FIELD + """')
if not found[2] then return -1 end
if found[1] then return found[1] end
""" + _EMIT

# A backup is a batch Redis took but fewer replicas than asked acknowledged in time, kept in the
# spool as well in case the primary dies before passing it on (CALLFLOW_REDIS_REPLICAS_TO_ACK).
# Its replay adds the stream entry again, which is harmless (each event and effect lands once by
# its key), but only fills in live fields the hash lacks: later requests may have moved the call
# on since, and a replica that was merely slow still has them.
BACKUP_FIELD = "backup"
_EMIT_BACKUP = INDEX_LIVE_LUA + """
redis.call('XADD', KEYS[1], '*', 'sid', ARGV[1], 'events', ARGV[2], 'effects', ARGV[3])
local existed = redis.call('EXISTS', KEYS[2]) == 1
for i = 5, #ARGV - 1, 2 do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
end
if not existed and #ARGV >= 5 then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  index_live(KEYS[2], ARGV[4])
end
return 0
"""


def job_id_for(call_sid: str, key: str) -> str:
    """The same effect of the same call always has the same job id (RQ allows [\\w-] only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{call_sid}-{key}")


@dataclass(frozen=True)
class Effect:
    """An effect the workers must carry out for a call, as the stream holds it: the effect's name
    (a CallEffect's, or a job's dotted name in entries written before effects were typed), its
    arguments, and a key unique within the call so a duplicate callback cannot run it twice."""

    func: str
    key: str
    args: tuple[object, ...] = ()
    delay_seconds: int = 0

    @classmethod
    def of(cls, effect: CallEffect, key: str, delay_seconds: int = 0) -> Effect:
        """The stream's record of one of the core's effects."""
        return cls(effect.name, key, effect.arguments(), delay_seconds)


@dataclass(frozen=True)
class Batch:
    """Events and effects for one call, from one request; the unit written to the stream."""

    call_sid: str
    events: tuple[Event, ...] = ()
    effects: tuple[Effect, ...] = ()
    live: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, call_sid: str, *events: Event, effects: tuple[Effect, ...] = (),
           live: LiveCall | None = None) -> Batch:
        """A batch whose live-state changes are typed."""
        return cls(call_sid, events, effects, live.encode() if live is not None else {})

    def encode(self) -> dict[str, str]:
        """Stream fields."""
        return {
            "sid": self.call_sid,
            "events": json.dumps([
                {"kind": e.kind, "key": e.key, "at": e.at.isoformat(), "detail": e.detail}
                for e in self.events
            ], separators=(",", ":")),
            "effects": json.dumps([
                {"func": f.func, "key": f.key, "args": list(f.args), "delay": f.delay_seconds}
                for f in self.effects
            ], separators=(",", ":")),
            "live": json.dumps(dict(self.live), separators=(",", ":")),
        }

    @classmethod
    def decode(cls, fields: Mapping) -> Batch:
        """Back from stream fields (bytes or str)."""
        def text(name: str) -> str:
            value = fields.get(name, fields.get(name.encode(), b""))
            return value.decode() if isinstance(value, bytes) else value

        events = tuple(
            Event(e["kind"], e["key"], datetime.fromisoformat(e["at"]), e["detail"])
            for e in json.loads(text("events") or "[]")
        )
        effects = tuple(
            Effect(f["func"], f["key"], tuple(f["args"]), f.get("delay", 0))
            for f in json.loads(text("effects") or "[]")
        )
        live = json.loads(text("live") or "{}")
        return cls(text("sid"), events, effects, live)


class SharedSpool(Protocol):
    """Somewhere every host can reach that keeps batches while Redis is down (the database)."""

    def put(self, batch: Batch, backup: bool = False) -> None:
        """Keep the batch durably (as a backup of one Redis took: see BACKUP_FIELD), or raise."""


def spooled_fields(batch: Batch, backup: bool = False) -> dict[str, str]:
    """What a spool keeps of a batch: its stream fields, and whether it is a backup."""
    fields = batch.encode()
    if backup:
        fields[BACKUP_FIELD] = "1"
    return fields


class CallEventSink:
    """Writes a request's events and effects in one pipelined round trip, or spools them:
    to the shared spool (the database) when there is one and it answers, else to local disk.

    With replicas_to_ack, the same round trip also WAITs up to replica_ack_ms for that many
    replicas to have the write; a batch they do not acknowledge in time is spooled as well, so
    that a primary that dies before passing it on does not lose it.
    """

    def __init__(self, client: redis.Redis, spool_dir: Path, shared: SharedSpool | None = None,
                 replicas_to_ack: int = 0, replica_ack_ms: int = 50):
        self.client = client
        self.spool_dir = spool_dir
        self.shared = shared
        self.replicas_to_ack = replicas_to_ack
        self.replica_ack_ms = replica_ack_ms
        self._replicas_behind = False  # the last write was not acknowledged in time (logged)
        self._shared_paused_until = 0.0
        self._spooled = any(spool_dir.glob("*.jsonl")) if spool_dir.exists() else False
        self._emit = client.register_script(_EMIT)
        self._emit_unless_listed = client.register_script(_EMIT_UNLESS_LISTED)

    def emit(self, batch: Batch, spool_instead: Batch | None = None) -> bool:
        """Record the batch; True if it reached Redis, False if it was spooled to disk.

        spool_instead is what to spool when Redis cannot take the batch, for a request whose
        answer depends on it (a caller who cannot be put through is offered voicemail instead).
        """
        try:
            self._record(self._emit, batch)
        except (redis.RedisError, OSError) as error:
            if not isinstance(error, CircuitOpen):  # the breaker logged the outage once
                log.warning("Redis unavailable (%s); spooling call events until it is back",
                            type(error).__name__)
            self.spool(spool_instead or batch)
            return False
        return True

    def spool(self, batch: Batch, backup: bool = False) -> None:
        """Keep a batch Redis could not take (or, as a backup, one its replicas did not
        acknowledge): in the shared spool if there is one and it answers (a host that dies then
        loses nothing it acknowledged), else on local disk."""
        if self.shared is not None and time.monotonic() >= self._shared_paused_until:
            try:
                self.shared.put(batch, backup=backup)
                return
            except Exception as error:  # any failure of the database: the disk still works
                log.warning("the database cannot spool call events (%s); spooling to disk",
                            type(error).__name__)
                self._shared_paused_until = time.monotonic() + DATABASE_SPOOL_PAUSE_SECONDS
        self.spool_to_disk(batch, backup=backup)

    def emit_unless_listed(self, number: str, batch: Batch) -> tuple[bool, bytes | None]:
        """Check the register cache for number and, if it is not there, record the batch.

        (True, None): the number is not on the register and the batch is recorded.
        (False, value): the number's cached routing value; (False, None): the cache is not
        complete. Nothing is recorded in either case. Redis errors are raised, not spooled:
        the caller still has to find out whether the number is on the register.
        """
        answer = self._record(self._emit_unless_listed, batch, extra_keys=[CACHE_KEY],
                              extra_args=[number])
        if isinstance(answer, bytes):
            return False, answer
        return answer != -1, None

    def _record(self, script, batch: Batch, extra_keys: Sequence[str] = (),
                extra_args: Sequence[str] = ()) -> object:
        fields = batch.encode()
        live = [item for pair in batch.live.items() for item in pair]
        keys = [STREAM_KEY, live_key(batch.call_sid), *extra_keys]
        args = [fields["sid"], fields["events"], fields["effects"], LIVE_TTL_SECONDS, *live,
                *extra_args]
        if self.replicas_to_ack:
            answer, acknowledged = self._record_and_wait(script, keys, args)
        else:
            answer, acknowledged = script(keys=keys, args=args), 0
        if answer == 0 and self._spooled:
            self._spooled = bool(drain_spool(self.spool_dir, self.client))
        if answer == 0 and self.replicas_to_ack:
            self._back_up_unless_replicated(batch, acknowledged)
        return answer

    def _record_and_wait(self, script, keys: list, args: list) -> tuple[object, int]:
        """The script and a WAIT for the replicas in one round trip: the script's answer and
        how many replicas have the write (0 if WAIT failed). Not through the Script object, whose
        pipelines first ask Redis whether it has the script: that would be a second round trip."""
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.replicas_to_ack, self.replica_ack_ms)
            answer, acknowledged = pipe.execute(raise_on_error=False)
            if attempt == 0 and isinstance(answer, redis.exceptions.NoScriptError):
                # A primary that has not run it yet (just started or promoted): load it, then
                # write and wait again. Once per primary and process.
                self.client.script_load(script.script)
                continue
            break
        if isinstance(answer, Exception):
            raise answer
        return answer, acknowledged if isinstance(acknowledged, int) else 0

    def _back_up_unless_replicated(self, batch: Batch, acknowledged: int) -> None:
        """Spool a backup of a batch too few replicas acknowledged; log when that starts and
        stops (not for every call)."""
        if acknowledged >= self.replicas_to_ack:
            if self._replicas_behind:
                self._replicas_behind = False
                log.warning("the Redis replicas acknowledge call events in time again")
            return
        if not self._replicas_behind:
            self._replicas_behind = True
            log.warning("%d of %d Redis replicas acknowledged call events within %d ms; keeping "
                        "a backup of each batch in the event spool until they do",
                        acknowledged, self.replicas_to_ack, self.replica_ack_ms)
        self.spool(batch, backup=True)

    def spool_to_disk(self, batch: Batch, backup: bool = False) -> None:
        """Append the batch to this process's spool file, synced to disk."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"events-{os.getpid()}.jsonl"
        line = json.dumps(spooled_fields(batch, backup), separators=(",", ":")) + "\n"
        with open(path, "a", encoding="utf-8") as spool:
            spool.write(line)
            spool.flush()
            os.fsync(spool.fileno())
        self._spooled = True


def drain_spool(spool_dir: Path, client: redis.Redis, limit: int = 10_000) -> int:
    """Move spooled batches into the stream; returns how many remain on disk. Safe to repeat."""
    if not spool_dir.exists():
        return 0
    scripts = _replay_scripts(client)
    for path in sorted(spool_dir.glob("*.jsonl")):
        claimed = path.with_suffix(f".draining-{uuid.uuid4().hex}")
        try:
            path.rename(claimed)  # atomic: two drainers never take the same file
        except FileNotFoundError:
            continue
        lines = [line for line in claimed.read_text(encoding="utf-8").splitlines() if line.strip()]
        for start in range(0, len(lines), limit):
            # Each batch is replayed as its request would have written it: the stream entry
            # and the live state, through the same script, in the order they were spooled.
            pipe = client.pipeline(transaction=False)
            for line in lines[start:start + limit]:
                _replay(scripts, pipe, json.loads(line))
            pipe.execute()
        claimed.unlink(missing_ok=True)
    for orphan in spool_dir.glob("*.draining-*"):
        # A drainer that died between rename and unlink (rename sets ctime): put the file back.
        # Replaying it is harmless, since every event and effect lands once by its key.
        if time.time() - orphan.stat().st_ctime > ORPHAN_AFTER_SECONDS:
            orphan.rename(orphan.with_name(f"recovered-{uuid.uuid4().hex}.jsonl"))
    return sum(1 for _ in spool_dir.glob("*.jsonl"))


def replay(client: redis.Redis, spooled: Iterable[Mapping[str, str]]) -> None:
    """Write spooled batches (stream fields) to the stream, in order, in one round trip."""
    scripts = _replay_scripts(client)
    pipe = client.pipeline(transaction=False)
    for fields in spooled:
        _replay(scripts, pipe, fields)
    pipe.execute()


def _replay_scripts(client: redis.Redis) -> tuple:
    """The scripts a replay writes with: a spooled batch's, and a backup's."""
    return client.register_script(_EMIT), client.register_script(_EMIT_BACKUP)


def _replay(scripts: tuple, pipe, fields: Mapping[str, str]) -> None:
    emit, emit_backup = scripts
    live = json.loads(fields.get("live") or "{}")
    script = emit_backup if fields.get(BACKUP_FIELD) else emit
    script(keys=[STREAM_KEY, live_key(fields["sid"])],
           args=[fields["sid"], fields.get("events", "[]"), fields.get("effects", "[]"),
                 LIVE_TTL_SECONDS, *(item for pair in live.items() for item in pair)],
           client=pipe)
