"""Redis killed for 10 s and restarted under the service's real processes (web, pump, worker,
scheduler) while calls keep coming, 10 a second.

Counts processes that exited, calls not answered with TwiML that routes the caller, and
/healthz answers that were not 200; measures how long after Redis was back each process took to
say so, and how often /healthz said "degraded" while Redis was down.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.faults import Row
from bench.faults.item_03_redis_hung import answered_well, settings_env, start_web
from tests.faults.processes import RedisServer, ServiceProcess, get_json, post_signed, wait_until

DOWN_SECONDS = 10.0
RATE = 10
RECOVERED = re.compile(r"Redis can be reached again, after (\d+) s")


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = RedisServer(workdir / "redis").start()
    env = settings_env(workdir, database_url, server.url)
    parts = [ServiceProcess.part(name, env, workdir / "logs").start()
             for name in ("pump", "worker", "scheduler")]
    web, port = start_web(env, workdir)
    calls = bad_calls = bad_health = degraded = checks_while_down = 0
    try:
        wait_until(lambda: "Listening on callflow" in parts[1].log(), 60, "the worker")
        server.kill()
        down_at = time.monotonic()
        restarted_at = 0.0
        while time.monotonic() - down_at < DOWN_SECONDS + 5.0:
            if not restarted_at and time.monotonic() - down_at >= DOWN_SECONDS:
                server.start()
                restarted_at = time.monotonic()
            params = {"CallSid": f"CA{calls:032x}", "From": f"+4477009{calls:05d}",
                      "To": "+441632960000", "CallStatus": "ringing"}
            try:
                status, body = post_signed(port, "/twilio/voice/incoming", params, env)
                bad_calls += not answered_well("/incoming", status, body)
            except (OSError, ET.ParseError):
                bad_calls += 1
            calls += 1
            health_status, health = get_json(port, "/healthz")
            bad_health += health_status != 200
            if not restarted_at:
                checks_while_down += 1
                degraded += health.get("status") == "degraded"
            time.sleep(1 / RATE)
        wait_until(lambda: all(RECOVERED.search(p.log()) for p in parts[1:]), 30,
                   "the worker and scheduler to reconnect")
        exited = sum(not p.running() for p in [*parts, web])
    finally:
        for part in [*parts, web]:
            part.stop()
        server.stop()
    waits = [int(RECOVERED.search(p.log()).group(1)) for p in parts[1:]]
    return Row(2, f"Redis killed {DOWN_SECONDS:.0f} s, {RATE} calls/s", 4 + calls + calls,
               exited + bad_calls + bad_health, "no process exits; every call routed; /healthz 200",
               f"outage as the worker/scheduler saw it: {waits[0]} s / {waits[1]} s; "
               f"/healthz said degraded {degraded} of {checks_while_down} times while it was down")
