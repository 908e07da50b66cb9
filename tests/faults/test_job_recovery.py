"""A delayed job (such as a waiting caller's maximum-wait offer) still runs when the worker or the
scheduler is killed and restarted: nothing waits for a dead process's lock to expire."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus

from tests.faults.processes import ServiceProcess, service_env, wait_until
from usecases.bootstrap import QUEUE_NAME

DELAY_SECONDS = 3
# Far below the 61 s a dead worker's rq scheduler lock outlives it, and rq's 10-minute retry.
WITHIN_SECONDS = 30
JOB_ID = "delayed-probe"


def finished(connection: redis.Redis) -> bool:
    """True once the probe job has run to completion."""
    return Job.fetch(JOB_ID, connection=connection).get_status() == JobStatus.FINISHED


@pytest.mark.parametrize("crashed", ["worker", "scheduler"])
def test_a_delayed_job_runs_after_a_crash_and_restart(fault_env, redis_server, tmp_path, crashed):
    env = service_env(fault_env)
    logs = tmp_path / "logs"
    parts = {name: ServiceProcess.part(name, env, logs).start() for name in ("worker", "scheduler")}
    connection = redis.Redis.from_url(redis_server.url)
    try:
        wait_until(lambda: "Listening on callflow" in parts["worker"].log(), 30, "the worker")
        wait_until(lambda: "Acquired scheduler lock" in parts["scheduler"].log()
                   + parts["worker"].log(), 30, "a scheduler lock holder")
        Queue(QUEUE_NAME, connection=connection).enqueue_in(
            timedelta(seconds=DELAY_SECONDS), "workers.pump.pump_events", job_id=JOB_ID)

        parts[crashed].kill()
        parts[crashed] = ServiceProcess.part(crashed, env, tmp_path / "restarted").start()

        wait_until(lambda: finished(connection), WITHIN_SECONDS, "the delayed job to run")
        assert all(part.running() for part in parts.values())
    finally:
        connection.close()
        for part in parts.values():
            part.stop()
