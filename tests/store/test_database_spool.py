"""The database spool: with Redis down, call events go to the database every host shares, and to
the local disk only when the database does not answer either; a pump replays them once."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select

from callflow.events import Event
from config.settings import EventSpool, load_settings
from store.call_events import (
    DATABASE_SPOOL_PAUSE_SECONDS,
    STREAM_KEY,
    Batch,
    CallEventSink,
    Effect,
)
from store.db import make_engine, make_session_factory
from store.db_spool import DatabaseSpool
from store.live_call import live_call
from store.models import SpooledBatch
from tests.conftest import NOW

SID = "CA" + "d" * 32
OTHER = "CA" + "e" * 32
NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every connection is refused


def batch(sid: str, key: str, minutes: int = 0, state: str = "queued") -> Batch:
    return Batch(sid, (Event("status", key, NOW + timedelta(minutes=minutes), {"n": minutes}),),
                 (Effect("dispatch", f"dispatch-{key}"),), {"state": state})


@pytest.fixture
def spool(services) -> DatabaseSpool:
    return DatabaseSpool(services.sessions, lambda: NOW, host="web-1")


@pytest.fixture
def down_sink(tmp_path, spool):
    """A sink whose Redis refuses every connection, spooling to the test's database."""
    client = redis.Redis.from_url(NOWHERE, socket_connect_timeout=0.2)
    yield CallEventSink(client, tmp_path / "spool", spool)
    client.close()


def spooled_rows(services) -> list[tuple[str, str, str]]:
    with services.sessions() as session:
        rows = session.execute(select(SpooledBatch.call_sid, SpooledBatch.host,
                                      SpooledBatch.fields).order_by(SpooledBatch.id)).all()
    return [(row.call_sid, row.host, json.loads(row.fields)["events"]) for row in rows]


def test_with_redis_down_batches_go_to_the_database_in_order_and_nothing_to_disk(
        services, down_sink, tmp_path):
    assert down_sink.emit(batch(SID, "one", 0)) is False
    assert down_sink.emit(batch(OTHER, "two", 1)) is False
    assert down_sink.emit(batch(SID, "three", 2)) is False

    rows = spooled_rows(services)
    assert [(sid, host) for sid, host, _events in rows] == [
        (SID, "web-1"), (OTHER, "web-1"), (SID, "web-1")]
    assert [json.loads(events)[0]["key"] for _sid, _host, events in rows] == [
        "one", "two", "three"]
    assert not (tmp_path / "spool").exists()


def test_with_the_database_down_too_batches_go_to_the_local_disk(tmp_path, services):
    # An engine on a file with no tables: every insert fails, as a database that is away does.
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    client = redis.Redis.from_url(NOWHERE, socket_connect_timeout=0.2)
    sink = CallEventSink(client, tmp_path / "spool",
                         DatabaseSpool(make_session_factory(empty), lambda: NOW))
    try:
        assert sink.emit(batch(SID, "one")) is False
        assert sink.emit(batch(SID, "two")) is False
    finally:
        client.close()
        empty.dispose()
    (path,) = (tmp_path / "spool").glob("*.jsonl")
    keys = [json.loads(json.loads(line)["events"])[0]["key"]
            for line in path.read_text().splitlines()]
    assert keys == ["one", "two"]
    assert spooled_rows(services) == []


def test_drain_replays_every_batch_into_the_stream_once_in_order_with_its_live_state(
        services, spool, down_sink):
    for n, key in enumerate(("one", "two", "three")):
        down_sink.emit(batch(SID, key, n, state="queued" if n < 2 else "ended"))
    down_sink.emit(batch(OTHER, "four", 3))

    assert spool.drain(services.worker_redis, limit=2) == 4
    entries = [Batch.decode(fields) for _id, fields in services.worker_redis.xrange(STREAM_KEY)]
    assert [(b.call_sid, b.events[0].key) for b in entries] == [
        (SID, "one"), (SID, "two"), (SID, "three"), (OTHER, "four")]
    assert entries[0].effects == (Effect("dispatch", "dispatch-one"),)
    assert live_call(services.worker_redis, SID)["state"] == "ended"
    assert spool.size() == 0
    assert spool.drain(services.worker_redis) == 0
    assert services.worker_redis.xlen(STREAM_KEY) == 4


def test_a_failed_replay_leaves_the_rows_for_the_next_pump(services, spool, down_sink):
    down_sink.emit(batch(SID, "one"))
    client = redis.Redis.from_url(NOWHERE, socket_connect_timeout=0.2)
    try:
        with pytest.raises(redis.ConnectionError):
            spool.drain(client)
    finally:
        client.close()
    assert spool.size() == 1
    assert spool.drain(services.worker_redis) == 1
    assert spool.size() == 0


def test_the_setting_chooses_the_database_for_postgresql_and_disk_for_sqlite():
    def spools(url: str, choice: str | None = None) -> bool:
        env = {"CALLFLOW_ENV": "test", "DATABASE_URL": url}
        if choice is not None:
            env["CALLFLOW_EVENT_SPOOL"] = choice
        return load_settings(env).spools_to_database

    assert spools("postgresql://db.internal/callflow") is True
    assert spools("sqlite:///var/callflow.db") is False
    assert spools("sqlite:///var/callflow.db", "database") is True
    assert spools("postgresql://db.internal/callflow", "disk") is False
    assert load_settings({"CALLFLOW_ENV": "test"}).event_spool is EventSpool.AUTO


def test_an_unknown_spool_setting_is_refused_by_name():
    from config.settings import SettingsError

    with pytest.raises(SettingsError) as error:
        load_settings({"CALLFLOW_ENV": "test", "CALLFLOW_EVENT_SPOOL": "tape"})
    assert str(error.value) == "CALLFLOW_EVENT_SPOOL='tape': use one of auto, database, disk"


def test_the_service_wires_the_database_spool_when_the_setting_asks(services, more_services,
                                                                    settings, tmp_path):
    s = more_services(settings.with_overrides(event_spool=EventSpool.DATABASE,
                                              redis_url=NOWHERE, var_dir=tmp_path / "v"))
    assert s.event_sink.emit(batch(SID, "one")) is False
    with s.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SpooledBatch)) == 1
    assert not (tmp_path / "v" / "spool").exists()


def test_after_the_database_fails_the_sink_leaves_it_alone_for_a_while(tmp_path, monkeypatch):
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    shared = DatabaseSpool(make_session_factory(empty), lambda: NOW)
    tries: list[str] = []
    real_put = shared.put

    def counted(batch: Batch, backup: bool = False) -> None:
        tries.append(batch.events[0].key)
        real_put(batch, backup)

    monkeypatch.setattr(shared, "put", counted)
    client = redis.Redis.from_url(NOWHERE, socket_connect_timeout=0.2)
    sink = CallEventSink(client, tmp_path / "spool", shared)
    try:
        for key in ("one", "two", "three"):
            sink.emit(batch(SID, key))
        assert tries == ["one"], "one failure, then straight to disk"
        moment = time.monotonic() + DATABASE_SPOOL_PAUSE_SECONDS + 1
        monkeypatch.setattr(time, "monotonic", lambda: moment)
        sink.emit(batch(SID, "four"))
        assert tries == ["one", "four"], "the database is tried again after the pause"
    finally:
        client.close()
        empty.dispose()
    (path,) = (tmp_path / "spool").glob("*.jsonl")
    assert len(path.read_text().splitlines()) == 4


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgresql"),
                    reason="row locks that skip what another pump holds: PostgreSQL only")
def test_two_pumps_draining_at_once_replay_each_batch_once(services, spool, down_sink):
    for n in range(400):
        down_sink.emit(batch(f"CA{n:032x}", "one"))
    with ThreadPoolExecutor(2) as pool:
        moved = list(pool.map(lambda _: spool.drain(services.worker_redis, limit=50), range(2)))
    assert sum(moved) == 400
    assert services.worker_redis.xlen(STREAM_KEY) == 400
    assert spool.size() == 0
