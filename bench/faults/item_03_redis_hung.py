"""A hung Redis (SIGSTOP for 10 s) under 20 incoming calls and 20 status callbacks a second.

The web server runs as `callflow run` starts it (gunicorn, 2 workers, 4 threads each). Counts
the webhooks not answered within 1 s, or not with what Twilio needs (TwiML that routes the
caller; 204 for a status callback), from the freeze until a second after the thaw.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.faults import Row
from tests.faults.processes import (
    LOOPBACK,
    RedisServer,
    ServiceProcess,
    free_port,
    get_json,
    post_signed,
    service_env,
    wait_until,
)

RATE = 20  # of each kind, per second
FREEZE_SECONDS = 10.0
SLOW_SECONDS = 1.0
SPOKEN = {"Say", "Play", "Dial", "Gather", "Record"}


def settings_env(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The service's settings for a scenario, as environment variables."""
    return service_env({
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "bench-secret",
        "TWILIO_AUTH_TOKEN": "bench-auth-token", "PUBLIC_BASE_URL": "https://callflow.test",
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00",
    })


def start_web(env: dict[str, str], workdir: Path, workers: int = 2) -> tuple[ServiceProcess, int]:
    """gunicorn as the runner starts it, answering /healthz."""
    port = free_port()
    web = ServiceProcess([sys.executable, "-m", "gunicorn", "service.wsgi:app", "--config",
                          "python:service.gunicorn_conf", "--bind", f"{LOOPBACK}:{port}",
                          "--workers", str(workers)], env, workdir / "web.log").start()
    wait_until(lambda: get_json(port, "/healthz")[0] == 200, 60, "the web server")
    return web, port


def answered_well(path: str, status: int, body: bytes) -> bool:
    """TwiML that routes the caller for an incoming call; 204 for a status callback."""
    if path.endswith("/status"):
        return status == 204
    if status != 200:
        return False
    root = ET.fromstring(body)
    return root.tag == "Response" and any(node.tag in SPOKEN for node in root.iter())


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = RedisServer(workdir / "redis").start()
    env = settings_env(workdir, database_url, server.url)
    web, port = start_web(env, workdir)
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def send(n: int, path: str) -> None:
        sid = f"CA{n:032x}"
        params = ({"CallSid": sid, "From": f"+4477009{n % 100000:05d}", "To": "+441632960000",
                   "CallStatus": "ringing"} if path.endswith("incoming") else
                  {"CallSid": sid, "CallStatus": "completed", "CallDuration": "12",
                   "SequenceNumber": "1"})
        started = time.monotonic()
        try:
            status, body = post_signed(port, path, params, env, timeout=30)
            good = answered_well(path, status, body)
        except (OSError, ET.ParseError):
            good = False
        with lock:
            results.append((time.monotonic() - started, good))

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            server.freeze()
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < FREEZE_SECONDS + 1.0:
                if time.monotonic() - start >= FREEZE_SECONDS and server.process is not None:
                    server.thaw()
                for path in ("/twilio/voice/incoming", "/twilio/voice/status"):
                    pool.submit(send, n, path)
                n += 1
                time.sleep(max(0.0, start + n / RATE - time.monotonic()))
    finally:
        server.thaw()
        web.stop()
        server.stop()
    seconds = sorted(took for took, _ in results)
    bad = sum(1 for took, good in results if took > SLOW_SECONDS or not good)
    p99 = seconds[int(len(seconds) * 0.99) - 1] if seconds else 0.0
    return Row(3, f"Redis hung {FREEZE_SECONDS:.0f} s, {RATE}+{RATE} webhooks/s", len(results),
               bad, "every webhook answered well within 1 s",
               f"median {statistics.median(seconds) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
               f"max {seconds[-1] * 1000:.0f} ms")
