"""Redis killed under `callflow run`: nothing exits, each process logs the outage once and its end
once, and /healthz answers 200 throughout, saying "degraded" until Redis is back."""

from __future__ import annotations

import re

from tests.faults.processes import (
    ServiceProcess,
    free_port,
    get_json,
    service_env,
    wait_until,
)

STARTED = re.compile(r"started (\w+) \(pid (\d+)\)")
OUTAGE = "{who}: Redis cannot be reached"
RECOVERED = "{who}: Redis can be reached again"
WEB_OUTAGE = "Redis is not answering"
WEB_RECOVERED = "Redis is answering again"
PROCESSES = ("worker", "scheduler", "pump")


def test_killing_redis_stops_nothing_and_each_process_reports_the_outage_once(
        fault_env, redis_server, tmp_path):
    port = free_port()
    env = service_env({**fault_env, "CALLFLOW_ENV": "development",
                       "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})
    runner = ServiceProcess.cli(["run", "--port", str(port), "--web-workers", "1"], env,
                                tmp_path / "run.log").start()
    try:
        wait_until(lambda: "callflow is running" in runner.log() or not runner.running(), 90,
                   "the runner's banner")
        assert runner.running(), runner.log()[-4000:]
        children = dict(STARTED.findall(runner.log()))
        assert set(children) == {"web", "pump", "worker", "scheduler"}
        wait_until(lambda: "Listening on callflow" in runner.log(), 30, "the worker to listen")
        assert get_json(port, "/healthz") == (200, {"status": "ok"})

        redis_server.kill()
        wait_until(lambda: all(OUTAGE.format(who=f"callflow {who}") in runner.log()
                               for who in PROCESSES), 30, "each to see the outage",
                   log=runner.log)
        degraded = wait_until(lambda: get_json(port, "/healthz")[1].get("status") == "degraded"
                              and get_json(port, "/healthz"), 10, "/healthz to say degraded")
        assert degraded[0] == 200
        assert "Redis cannot be reached" in " ".join(degraded[1]["reasons"])
        # A few failed checks open the web's circuit breaker; from then on it spares Redis.
        wait_until(lambda: get_json(port, "/healthz") and WEB_OUTAGE in runner.log(), 10,
                   "the web's circuit breaker to open")

        redis_server.start()
        wait_until(lambda: all(RECOVERED.format(who=f"callflow {who}") in runner.log()
                               for who in PROCESSES), 30, "each to reconnect",
                   log=runner.log)
        wait_until(lambda: get_json(port, "/healthz")[1].get("status") == "ok", 15,
                   "/healthz to say ok again")
        wait_until(lambda: runner.log().count("Listening on callflow") == 2, 15,
                   "a fresh rq worker to listen",
                   log=runner.log)

        log = runner.log()
        assert runner.running()
        assert "stopping the rest" not in log and "restarted it" not in log
        for who in PROCESSES:
            assert log.count(OUTAGE.format(who=f"callflow {who}")) == 1, who
            assert log.count(RECOVERED.format(who=f"callflow {who}")) == 1, who
        assert log.count(WEB_OUTAGE) == 1
        assert log.count(WEB_RECOVERED) == 1
    finally:
        assert runner.stop(20) == 0, runner.log()[-4000:]
