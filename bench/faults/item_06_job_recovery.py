"""A delayed job due 3 s after the worker is killed (SIGKILL, as a crash) and restarted at once.

rq's own scheduler ran inside the worker and its lock outlived a crash, so the restarted worker
left delayed jobs alone for up to 10 minutes. Measures how many seconds after it was due each
delayed job ran; a job later than 15 s after the crash counts as failed.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import redis
from rq import Queue
from rq.job import Job, JobStatus

from bench.faults import Row
from bench.faults.item_03_redis_hung import settings_env
from tests.faults.processes import RedisServer, ServiceProcess, wait_until
from usecases.bootstrap import QUEUE_NAME

JOBS = 5
DELAY_SECONDS = 3
BOUND_SECONDS = 15.0
GIVE_UP_SECONDS = 90.0


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = RedisServer(workdir / "redis").start()
    env = settings_env(workdir, database_url, server.url)
    parts = {name: ServiceProcess.part(name, env, workdir / "logs").start()
             for name in ("worker", "scheduler")}
    connection = redis.Redis.from_url(server.url)
    late: list[float] = []
    try:
        wait_until(lambda: "Listening on callflow" in parts["worker"].log(), 60, "the worker")
        queue = Queue(QUEUE_NAME, connection=connection)
        ids = [queue.enqueue_in(timedelta(seconds=DELAY_SECONDS), "workers.pump.pump_events",
                                job_id=f"delayed-{n}").id for n in range(JOBS)]
        crashed_at = time.monotonic()
        parts["worker"].kill()
        parts["worker"] = ServiceProcess.part("worker", env, workdir / "restarted").start()
        pending = set(ids)
        while pending and time.monotonic() - crashed_at < GIVE_UP_SECONDS:
            for job_id in list(pending):
                if Job.fetch(job_id, connection=connection).get_status() == JobStatus.FINISHED:
                    pending.discard(job_id)
                    late.append(time.monotonic() - crashed_at)
            time.sleep(0.1)
    finally:
        connection.close()
        for part in parts.values():
            part.stop()
        server.stop()
    failed = JOBS - sum(1 for seconds in late if seconds <= BOUND_SECONDS)
    slowest = f"{max(late):.1f} s" if late else "never"
    return Row(6, f"worker killed; {JOBS} delayed jobs due {DELAY_SECONDS} s later", JOBS, failed,
               f"each runs within {BOUND_SECONDS:.0f} s of the crash",
               f"last ran {slowest} after the crash ({len(late)} of {JOBS} ran)")
