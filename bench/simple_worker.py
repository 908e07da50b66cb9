"""`callflow worker` as it was before issue 15's fix, forking a work horse per job: the pipeline
benchmark's comparison only (`bench.pipeline --fork`).

The service's own worker (service/background.py) now runs each job in its own process, keeping
its database and Redis connections from one job to the next. rq's Worker forks a work horse for
every job instead, and each horse opens its own connections (`workers.context` builds them on
first use, in the horse). This is the service's PatientWorker loop with Worker's execution:

    python -m bench.simple_worker          # with the service's environment, as `callflow worker`

(The module kept its name from when the comparison ran the other way round.)
"""

from __future__ import annotations

import threading

import redis
from rq import Worker

from service.background import PatientWorker, _stop_on_signals
from service.cli_context import command_services
from store.redis_client import Outage, wait_for_redis
from usecases.bootstrap import QUEUE_NAME


class ForkingPatientWorker(Worker, PatientWorker):
    """PatientWorker's handling of a Redis outage; each job run in a forked work horse."""


def main() -> None:
    """Work the callflow queue until Ctrl-C or SIGTERM, as service.background.run_worker."""
    client = command_services().worker_redis
    outage = Outage("callflow worker (a fork per job)")
    stop = threading.Event()
    while True:
        _stop_on_signals(stop)
        if not wait_for_redis(client, outage, stop):
            return
        worker = ForkingPatientWorker([QUEUE_NAME], connection=client, outage=outage)
        try:
            worker.work()
        except (redis.RedisError, OSError) as error:
            outage.failed(error)
        if worker.stopping or stop.is_set():
            return


if __name__ == "__main__":
    main()
