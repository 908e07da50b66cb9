"""CALLFLOW_REDIS_REPLICAS_TO_ACK: a call's events are written and WAITed for in one round trip;
what the replicas do not acknowledge in time is also kept in the database spool, so a primary
that dies before passing it on loses nothing; each event still reaches the call log once."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from callflow.events import Event
from config.settings import EventSpool, SettingsError, load_settings
from service.app import create_app
from store.call_events import STREAM_KEY, Batch, Effect, drain_spool
from store.db_spool import DatabaseSpool
from store.live_call import live_call, live_key
from store.models import CallEvent, SpooledBatch
from store.redis_client import CALL_PATH_TIMEOUT, REDIS_TICK_SECONDS
from tests.conftest import NOW
from tests.faults.processes import RedisServer, ReplicaServer, wait_until
from workers import pump
from workers.context import use_services

SID = "CA" + "a1" * 16
OTHER = "CA" + "b2" * 16
ACK_MS = 50
PATIENT_ACK_MS = 100  # the most the setting allows: a replica in sync acks well within it
# A paused replica makes the webhook wait ACK_MS; the margin is for a busy two-core machine.
ANSWER_MARGIN_SECONDS = 0.5
BASE = "https://callflow.test"
TOKEN = "test-auth-token"


def replica_online(server: RedisServer) -> bool:
    """True once the primary's replica has synced and acknowledges a write."""
    client = redis.Redis.from_url(server.url)
    try:
        if client.info("replication").get("slave0", {}).get("state") != "online":
            return False
        client.set("replica-check", 1)
        return client.execute_command("WAIT", 1, 1000) == 1
    finally:
        client.delete("replica-check")
        client.close()


def waits_sent(server: RedisServer) -> int:
    """How many WAIT commands the server has run (INFO commandstats)."""
    client = redis.Redis.from_url(server.url)
    try:
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
    finally:
        client.close()


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "primary").start()
    yield server
    server.stop()


@pytest.fixture
def replica(tmp_path: Path, primary: RedisServer) -> Iterator[ReplicaServer]:
    client = redis.Redis.from_url(primary.url)
    client.config_set("repl-diskless-sync-delay", 0)  # sync at once, not after 5 s
    client.close()
    server = ReplicaServer(tmp_path / "replica", primary.port).start()
    try:
        wait_until(lambda: replica_online(primary), 15, "the replica to sync with the primary")
        yield server
    finally:
        server.stop()  # thaws it first if a test left it paused


@pytest.fixture
def on_redis(services, settings, more_services, tmp_path):
    """Services on the given Redis, spooling to the test's database, acking as asked."""
    def build(server: RedisServer, replicas_to_ack: int, ack_ms: int = ACK_MS):
        return more_services(settings.with_overrides(
            redis_url=server.url, var_dir=tmp_path / "v", event_spool=EventSpool.DATABASE,
            redis_replicas_to_ack=replicas_to_ack, redis_replica_ack_ms=ack_ms))
    return build


@pytest.fixture
def pumping():
    yield lambda s: use_services(s)
    use_services(None)


def batch(sid: str, key: str, state: str, **live: str) -> Batch:
    return Batch(sid, (Event("status", key, NOW, {"status": "ringing"}),),
                 (Effect("dispatch", f"dispatch-{key}"),), {"state": state, **live})


def spooled(s) -> list[dict]:
    with s.sessions() as session:
        return [json.loads(fields) for fields in
                session.scalars(select(SpooledBatch.fields).order_by(SpooledBatch.id))]


def logged_keys(s, sid: str) -> Counter[str]:
    with s.sessions() as session:
        return Counter(session.scalars(select(CallEvent.event_key)
                                       .where(CallEvent.call_sid == sid)))


def post_incoming(client, sid: str, number: str):
    params = {"CallSid": sid, "From": number, "To": "+441632960000", "CallStatus": "ringing"}
    signature = RequestValidator(TOKEN).compute_signature(f"{BASE}/twilio/voice/incoming",
                                                          params)
    return client.post("/twilio/voice/incoming", data=params,
                       headers={"X-Twilio-Signature": signature})


def test_with_a_replica_attached_the_write_is_acknowledged_and_kept_nowhere_else(
        on_redis, primary, replica):
    s = on_redis(primary, replicas_to_ack=1, ack_ms=PATIENT_ACK_MS)
    assert s.event_sink.emit(batch(OTHER, "zero", "queued")) is True  # loads the script
    waits_before = waits_sent(primary)

    assert s.event_sink.emit(batch(SID, "one", "queued")) is True

    assert waits_sent(primary) == waits_before + 1
    # WAIT returned 1: the replica had the entry before emit returned, and no backup was kept.
    on_replica = redis.Redis.from_url(replica.url)
    try:
        assert on_replica.xlen(STREAM_KEY) == 2
    finally:
        on_replica.close()
    assert spooled(s) == []
    assert not (s.settings.var_dir / "spool").exists()


def test_with_the_replica_paused_the_caller_is_answered_the_batch_backed_up_and_logged_once(
        on_redis, primary, replica, staff, clock, pumping):
    s = on_redis(primary, replicas_to_ack=1)
    s.register.rebuild_cache(clock.now.date())
    app = create_app(services=s).test_client()
    assert post_incoming(app, OTHER, "+447700900111").status_code == 200  # warm the app up
    # (On a busy machine the replica may be slow to ack even this one: then it is backed up too.)
    before = spooled(s)

    replica.freeze()
    try:
        started = time.monotonic()
        response = post_incoming(app, SID, "+447700900222")
        elapsed = time.monotonic() - started
    finally:
        replica.thaw()

    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert root.find("Dial/Conference") is not None, "put through, not the trouble route"
    assert elapsed < ACK_MS / 1000 + ANSWER_MARGIN_SECONDS
    (backup,) = spooled(s)[len(before):]
    assert (backup["sid"], backup["backup"]) == (SID, "1")
    written = [Batch.decode(fields) for _id, fields in s.redis.xrange(STREAM_KEY)]
    assert [b.call_sid for b in written] == [OTHER, SID], "Redis took it too"
    keys = [f"{SID}:{e.key}" for e in written[1].events]
    live_before = live_call(s.worker_redis, SID)

    pumping(s)
    pump.pump_events()

    assert logged_keys(s, SID) == Counter(keys), "each event once, from stream and spool both"
    assert DatabaseSpool(s.sessions, lambda: NOW).size() == 0
    assert live_call(s.worker_redis, SID) == live_before


def test_a_backup_replayed_later_does_not_undo_what_later_requests_wrote(on_redis, primary,
                                                                         replica, pumping):
    s = on_redis(primary, replicas_to_ack=1)
    replica.freeze()
    try:
        s.event_sink.emit(batch(SID, "one", "queued", conference_sid="CF1"))
    finally:
        replica.thaw()
    s.event_sink.emit(batch(SID, "two", "ringing"))
    first = spooled(s)[0]
    assert (first["events"], first["backup"]) == (batch(SID, "one", "queued").encode()["events"],
                                                  "1")

    pumping(s)
    pump.pump_events()

    live = live_call(s.worker_redis, SID)
    assert (live["state"], live["conference_sid"]) == ("ringing", "CF1")
    assert logged_keys(s, SID) == Counter({f"{SID}:one": 1, f"{SID}:two": 1})


def test_without_a_database_spool_the_backup_is_kept_on_disk_and_replayed_the_same_way(
        services, settings, more_services, tmp_path, primary, replica):
    s = more_services(settings.with_overrides(
        redis_url=primary.url, var_dir=tmp_path / "d", event_spool=EventSpool.DISK,
        redis_replicas_to_ack=1, redis_replica_ack_ms=ACK_MS))
    replica.freeze()
    try:
        s.event_sink.emit(batch(SID, "one", "queued", conference_sid="CF1"))
    finally:
        replica.thaw()
    (path,) = (tmp_path / "d" / "spool").glob("*.jsonl")
    (line,) = path.read_text().splitlines()
    assert (json.loads(line)["sid"], json.loads(line)["backup"]) == (SID, "1")
    s.worker_redis.hset(live_key(SID), "state", "ringing")  # a later request moved the call on

    assert drain_spool(tmp_path / "d" / "spool", s.worker_redis) == 0

    live = live_call(s.worker_redis, SID)
    assert (live["state"], live["conference_sid"]) == ("ringing", "CF1")
    assert s.worker_redis.xlen(STREAM_KEY) == 2, "the write and its backup's replay"


def test_a_batch_the_dead_primary_never_passed_on_reaches_the_promoted_replica(
        on_redis, primary, replica, pumping):
    s = on_redis(primary, replicas_to_ack=1)
    replica.freeze()
    # Cut the link first, so that nothing of the write is on its way when the primary dies.
    s.worker_redis.execute_command("CLIENT", "KILL", "TYPE", "replica")
    s.event_sink.emit(batch(SID, "one", "queued", conference_sid="CF1"))
    primary.kill()
    replica.thaw()
    promoted = redis.Redis.from_url(replica.url)
    try:
        promoted.execute_command("REPLICAOF", "NO", "ONE")
        assert promoted.xlen(STREAM_KEY) == 0, "the write died with the primary"
    finally:
        promoted.close()

    after = on_redis(replica, replicas_to_ack=1)
    pumping(after)
    pump.pump_events()

    assert logged_keys(after, SID) == Counter({f"{SID}:one": 1})
    live = live_call(after.worker_redis, SID)
    assert (live["state"], live["conference_sid"]) == ("queued", "CF1")
    assert DatabaseSpool(after.sessions, lambda: NOW).size() == 0


def test_with_the_setting_off_no_wait_is_sent(on_redis, primary, replica):
    s = on_redis(primary, replicas_to_ack=0)
    waits_before = waits_sent(primary)  # the fixture's own check that the replica is in sync
    assert s.event_sink.emit(batch(SID, "one", "queued")) is True
    assert s.event_sink.emit(batch(SID, "two", "queued")) is True
    assert s.redis.xlen(STREAM_KEY) == 2
    assert waits_sent(primary) == waits_before
    assert spooled(s) == []


def test_the_settings_are_read_and_bounded(tmp_path):
    base = {"CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(tmp_path)}
    default = load_settings(base)
    assert (default.redis_replicas_to_ack, default.redis_replica_ack_ms) == (0, 50)
    chosen = load_settings({**base, "CALLFLOW_REDIS_REPLICAS_TO_ACK": "1",
                            "CALLFLOW_REDIS_REPLICA_ACK_MS": "20"})
    assert (chosen.redis_replicas_to_ack, chosen.redis_replica_ack_ms) == (1, 20)
    with pytest.raises(SettingsError, match="CALLFLOW_REDIS_REPLICA_ACK_MS='500': must be at "
                                            "most 100"):
        load_settings({**base, "CALLFLOW_REDIS_REPLICA_ACK_MS": "500"})


def test_the_service_wires_the_setting_into_its_sink(on_redis, primary):
    s = on_redis(primary, replicas_to_ack=2)
    assert (s.event_sink.replicas_to_ack, s.event_sink.replica_ack_ms) == (2, ACK_MS)
    # The read time-out allows for the wait, rounded up to Redis's tick, on top of the usual.
    timeout = s.redis.connection_pool.connection_kwargs["socket_timeout"]
    assert timeout == pytest.approx(CALL_PATH_TIMEOUT + ACK_MS / 1000 + REDIS_TICK_SECONDS)
    off = on_redis(primary, replicas_to_ack=0)
    assert off.redis.connection_pool.connection_kwargs["socket_timeout"] == CALL_PATH_TIMEOUT

