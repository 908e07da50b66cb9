"""What the rq worker's own bookkeeping costs a job: CPU and Redis round trips per job.

    .venv/bin/python -m bench.worker_jobs --jobs 2000

Queues --jobs jobs that do no Redis work of their own on a redis-server of the bench's own, then
runs the service's worker (service/background.py's PatientWorker) over them in burst mode and
prints its CPU, wall time, Redis commands and round trips per job (round trips counted in
redis-py, commands from the server's INFO commandstats). What remains per job is rq's: dequeue,
job fetch, the execution's and the job's bookkeeping, the result.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.pipeline import RedisServer


def doubled(n: int) -> int:
    """A job with no Redis work of its own."""
    return 2 * n


def main(argv: list[str] | None = None) -> int:
    """Queue the jobs, work them off, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args(argv)

    import redis
    from redis.connection import AbstractConnection
    from rq import Queue

    from service.background import PatientWorker
    from store.redis_client import Outage
    from usecases.bootstrap import QUEUE_NAME

    folder = Path(tempfile.mkdtemp(prefix="callflow-worker-jobs-"))
    server = RedisServer(folder)
    try:
        client = redis.Redis.from_url(server.url)
        queue = Queue(QUEUE_NAME, connection=client)
        with client.pipeline() as pipe:
            queue.enqueue_many([Queue.prepare_data(doubled, (n,), result_ttl=3600)
                                for n in range(args.jobs)], pipeline=pipe)
            pipe.execute()
        commands_before = _commands(client)
        sent = [0]
        real_send = AbstractConnection.send_packed_command

        def counting(self, command, check_health=True):
            sent[0] += 1
            return real_send(self, command, check_health)

        AbstractConnection.send_packed_command = counting
        logging.disable(logging.INFO)
        worker = PatientWorker([QUEUE_NAME], connection=client, outage=Outage("bench worker"))
        cpu, wall = time.process_time(), time.perf_counter()
        worker.work(burst=True)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        AbstractConnection.send_packed_command = real_send
        commands = _commands(client) - commands_before
        print(f"{args.jobs} jobs: {cpu / args.jobs * 1e6:,.0f} µs CPU a job, "
              f"{wall / args.jobs * 1e6:,.0f} µs wall, {sent[0] / args.jobs:.1f} Redis round "
              f"trips and {commands / args.jobs:.1f} commands a job")
        client.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _commands(client) -> int:
    return sum(stats["calls"] for stats in client.info("commandstats").values())


if __name__ == "__main__":
    sys.exit(main())
