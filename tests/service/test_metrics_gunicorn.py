"""/metrics under gunicorn with several workers: counts made by every worker, dead ones included,
are added up whichever worker answers the scrape."""

from __future__ import annotations

import http.client
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.faults.processes import (
    LOOPBACK,
    ServiceProcess,
    free_port,
    get_json,
    post_signed,
    service_env,
    wait_until,
)

METRICS_TOKEN = "t" * 32
INCOMING = "/twilio/voice/incoming"
CALLS = 24
WORKERS = 2


def incoming(n: int) -> dict[str, str]:
    """An incoming call from a fictional (Ofcom drama) number."""
    return {"CallSid": f"CA{n:032x}", "From": f"+44770090{n:04d}", "To": "+441632960000",
            "CallStatus": "ringing"}


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """/metrics, with the token, as samples by name and labels."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", "/metrics",
                           headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
    finally:
        connection.close()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def worker_pids(master: int) -> set[int]:
    """gunicorn's workers: the master's children."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_counts_from_every_worker_survive_the_workers_and_add_up(database_url, redis_url,
                                                                  services, tmp_path):
    port = free_port()
    var_dir = tmp_path / "var"
    env = service_env({
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(var_dir), "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "SECRET_KEY": "test-secret-key",
        "TWILIO_AUTH_TOKEN": "test-auth-token", "PUBLIC_BASE_URL": "https://callflow.test",
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00", "CALLFLOW_METRICS_TOKEN": METRICS_TOKEN,
    })
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn_conf makes one under the var dir
    web = ServiceProcess([sys.executable, "-m", "gunicorn", "service.wsgi:app", "--config",
                          "python:service.gunicorn_conf", "--bind", f"{LOOPBACK}:{port}",
                          "--workers", str(WORKERS)], env, tmp_path / "web.log").start()
    try:
        wait_until(lambda: get_json(port, "/healthz")[0] == 200 or not web.running(), 60,
                   "the web to answer", log=web.log)
        wait_until(lambda: len(worker_pids(web.pid)) == WORKERS, 30, "both workers")
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda n: post_signed(port, INCOMING, incoming(n), env)[0], range(CALLS)))
        assert answers == [200] * CALLS

        # Every worker that served a request left its counts in the shared directory.
        directory = var_dir / "metrics" / "web"
        served = {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("gauge_livemax_*.db")}
        assert served and served <= worker_pids(web.pid), "each worker's breaker state is kept"
        first = worker_pids(web.pid)
        for pid in first:  # each worker dies; gunicorn starts fresh ones
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len(worker_pids(web.pid) - first) == WORKERS, 60,
                   "fresh workers", log=web.log)
        wait_until(lambda: get_json(port, "/healthz")[0] == 200, 60, "the fresh workers")
        # child_exit dropped the dead workers' live gauges (the breaker's state) ...
        assert [p.name for pid in first for p in directory.glob(f"gauge_livemax_{pid}.db")] == []
        # ... and kept their counters.
        assert {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db")} & first

        # Scraped by workers that served none of the calls, several times: always all of them.
        for _ in range(4):
            samples = scrape(port)
            requests = samples[("callflow_webhook_requests_total",
                                frozenset({"endpoint": INCOMING, "status": "200"}.items()))]
            latencies = samples[("callflow_webhook_seconds_count",
                                 frozenset({"endpoint": INCOMING}.items()))]
            decided = sum(v for (name, _labels), v in samples.items()
                          if name == "callflow_decisions_total")
            assert (requests, latencies, decided) == (CALLS, CALLS, CALLS)
            # Only live workers' breakers count (child_exit marked the dead ones).
            assert samples[("callflow_redis_circuit", frozenset({"state": "open"}.items()))] == 0
        assert "+44770090" not in web.log()
    finally:
        web.stop()
