"""Redis behind Sentinel: the primary is killed while signed calls keep coming in; every call is
still answered, the sentinels promote the replica, every process follows it, and every call
reaches the call log."""

from __future__ import annotations

import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from store.db import make_engine, make_session_factory
from store.models import Call
from tests.faults.processes import (
    LOOPBACK,
    REDIS_SERVER,
    RedisServer,
    ReplicaServer,
    ServiceProcess,
    free_port,
    get_json,
    post_signed,
    service_env,
    wait_until,
    web_process,
)

SERVICE = "callflow"
SENTINELS = 3
QUORUM = 2
DOWN_AFTER_MS = 1000
SPOKEN = {"Say", "Play", "Dial", "Gather", "Record"}
LOAD_THREADS = 2
CALL_GAP_SECONDS = 0.02  # per thread: about 100 calls a second in all, while it lasts


class SentinelServer(RedisServer):
    """`redis-server sentinel.conf --sentinel`, watching the primary on primary_port."""

    def __init__(self, directory: Path, primary_port: int):
        super().__init__(directory)
        self.primary_port = primary_port

    def start(self) -> SentinelServer:
        """Write its configuration (Sentinel rewrites it as it learns) and start it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"
        conf.write_text("\n".join([
            f"bind {LOOPBACK}",
            f"port {self.port}",
            f"dir {self.directory}",
            f"logfile {self.directory / 'sentinel.log'}",
            f"sentinel monitor {SERVICE} {LOOPBACK} {self.primary_port} {QUORUM}",
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {SERVICE} 10000",
            f"sentinel parallel-syncs {SERVICE} 1",
            "",
        ]))
        self.process = subprocess.Popen(
            [REDIS_SERVER, str(conf), "--sentinel"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            process_group=0,
        )
        wait_until(self.answers, 10, f"the sentinel on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        """A client for asking this sentinel."""
        return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1,
                           socket_connect_timeout=1, decode_responses=True)

    def primary_port_now(self) -> int | None:
        """The port of the primary this sentinel names now."""
        client = self.client()
        try:
            address = client.sentinel_get_master_addr_by_name(SERVICE)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return int(address[1]) if address else None

    def ready(self) -> bool:
        """True once it knows the replica and the other sentinels (so that it can fail over)."""
        client = self.client()
        try:
            master = client.sentinel_master(SERVICE)
        except redis.RedisError:
            return False
        finally:
            client.close()
        return (int(master["num-slaves"]) == 1
                and int(master["num-other-sentinels"]) == SENTINELS - 1)


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, ReplicaServer,
                                                       list[SentinelServer]]]:
    """A primary, its replica and three sentinels, all of the test's own, on loopback."""
    started: list[RedisServer] = []
    try:
        primary = RedisServer(tmp_path / "primary").start()
        started.append(primary)
        replica = ReplicaServer(tmp_path / "replica", primary.port).start()
        started.append(replica)
        sentinels = []
        for n in range(SENTINELS):
            sentinels.append(SentinelServer(tmp_path / f"sentinel{n}", primary.port).start())
            started.append(sentinels[-1])
        wait_until(lambda: all(s.ready() for s in sentinels), 30,
                   "the sentinels to find the replica and each other")
        yield primary, replica, sentinels
    finally:
        for server in reversed(started):
            server.stop()


def call_sid(n: int) -> str:
    """A well-formed CallSid, different for each n."""
    return f"CA{n:032x}"


def incoming(n: int) -> dict[str, str]:
    """Twilio's incoming-call parameters for the n-th fictional caller (Ofcom drama range)."""
    return {"CallSid": call_sid(n), "From": f"+44770090{n % 10000:04d}", "To": "+441632960000",
            "CallStatus": "ringing"}


def routes_the_caller(body: bytes) -> bool:
    """True when the TwiML parses and says, plays or dials something (never silence)."""
    root = ET.fromstring(body)
    return root.tag == "Response" and any(node.tag in SPOKEN for node in root.iter())


class Load:
    """Threads posting signed incoming calls until stopped; what each call was answered."""

    def __init__(self, port: int, env: dict[str, str]):
        self.port = port
        self.env = env
        self.answers: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(LOAD_THREADS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                n = self._next
                self._next += 1
            answer = post_signed(self.port, "/twilio/voice/incoming", incoming(n), self.env)
            with self._lock:
                self.answers[call_sid(n)] = answer
            time.sleep(CALL_GAP_SECONDS)

    def count(self) -> int:
        """Calls answered so far."""
        with self._lock:
            return len(self.answers)


def logged_sids(database_url: str, sids: set[str]) -> set[str]:
    """Which of these calls are in the call log."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return set(session.scalars(select(Call.call_sid).where(Call.call_sid.in_(sids))))
    finally:
        engine.dispose()


def test_calls_are_answered_and_logged_while_sentinel_fails_the_primary_over(
        sentinel_cluster, database_url, tmp_path):
    primary, replica, sentinels = sentinel_cluster
    hosts = ",".join(f"{LOOPBACK}:{s.port}" for s in sentinels)
    port = free_port()
    env = service_env({
        "CALLFLOW_ENV": "test",
        "CALLFLOW_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis+sentinel://{hosts}/{SERVICE}/0",
        "SECRET_KEY": "test-secret-key",
        "TWILIO_AUTH_TOKEN": "test-auth-token",
        "PUBLIC_BASE_URL": "https://callflow.test",
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00",
    })
    logs = tmp_path / "logs"
    web = web_process(env, logs, port).start()
    pump, worker, scheduler = (ServiceProcess.part(name, env, logs).start()
                               for name in ("pump", "worker", "scheduler"))
    processes = [web, pump, worker, scheduler]
    try:
        wait_until(lambda: get_json(port, "/readyz")[0] == 200 or not web.running(), 60,
                   "the web to be ready", log=web.log)
        assert web.running(), web.log()

        with Load(port, env) as load:
            wait_until(lambda: load.count() >= 50, 30, "calls before the failover")
            primary.kill()
            before_failover = load.count()
            wait_until(lambda: all(s.primary_port_now() == replica.port for s in sentinels),
                       30, "the sentinels to promote the replica")
            wait_until(lambda: get_json(port, "/healthz") == (200, {"status": "ok"}), 30,
                       "the web to reach the new primary", log=web.log)
            promoted_at = load.count()
            wait_until(lambda: load.count() >= promoted_at + 50, 30, "calls after the failover")

        answers = load.answers
        # Calls during the failover took the outage path (database lookup, spool), as designed.
        assert "Redis is not answering" in web.log()
        assert web.log().rstrip().count("Redis is answering again") >= 1
        assert before_failover >= 50 and len(answers) >= before_failover + 50
        assert {code for code, _ in answers.values()} == {200}
        assert sum(routes_the_caller(body) for _, body in answers.values()) == len(answers)

        # The pump follows the primary too and replays what was spooled while it was away.
        wanted = set(answers)
        wait_until(lambda: logged_sids(database_url, wanted) == wanted, 60,
                   "every answered call to reach the call log",
                   log=pump.log)
        new_primary = redis.Redis(host=LOOPBACK, port=replica.port)
        try:
            assert new_primary.role()[0] == b"master"
        finally:
            new_primary.close()
        # The worker and the scheduler lost the primary too, and found the new one.
        for who, process in (("worker", worker), ("scheduler", scheduler)):
            wait_until(lambda p=process, w=who: f"callflow {w}: Redis can be reached again"
                       in p.log(), 30, f"the {who} to reach the new primary", log=process.log)
        assert [p.running() for p in processes] == [True] * len(processes)
        # No phone number reaches the logs, even through the errors of a failover.
        for process in processes:
            assert "+4477009" not in process.log()
    finally:
        for process in processes:
            process.stop()
