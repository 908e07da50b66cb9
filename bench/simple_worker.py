"""`callflow worker` without a fork per job, for the pipeline benchmark's comparison only.

rq's Worker forks a work horse for every job, and each horse opens its own database and Redis
connections (`workers.context` builds them on first use, in the horse). rq's SimpleWorker runs
the job in the worker process itself, so the connections last. This is the service's own
PatientWorker loop (service/background.py) with SimpleWorker's execution:

    python -m bench.simple_worker          # with the service's environment, as `callflow worker`
"""

from __future__ import annotations

import threading

import redis
from rq import SimpleWorker

from service.background import PatientWorker, _stop_on_signals
from service.cli_context import command_services
from store.redis_client import Outage, wait_for_redis
from usecases.bootstrap import QUEUE_NAME


class PatientSimpleWorker(PatientWorker, SimpleWorker):
    """PatientWorker's handling of a Redis outage; each job run in this process."""


def main() -> None:
    """Work the callflow queue until Ctrl-C or SIGTERM, as service.background.run_worker."""
    client = command_services().worker_redis
    outage = Outage("callflow worker (no fork)")
    stop = threading.Event()
    while True:
        _stop_on_signals(stop)
        if not wait_for_redis(client, outage, stop):
            return
        worker = PatientSimpleWorker([QUEUE_NAME], connection=client, outage=outage)
        try:
            worker.work()
        except (redis.RedisError, OSError) as error:
            outage.failed(error)
        if worker.stopping or stop.is_set():
            return


if __name__ == "__main__":
    main()
