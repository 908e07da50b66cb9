"""The loops behind `callflow worker` and `callflow scheduler`: they wait out a lost or hung Redis
(logged once as it starts and once as it ends) instead of exiting, and delayed jobs do not hang
on any one worker's life (README, Reliability).

The worker runs each job in its own process rather than forking a work horse for it: the jobs
are small and idempotent, and a horse per job cost a fork and fresh database and Redis
connections every time (17-67 ms of CPU a call in bench/pipeline.py). Each job still has its
time-out (rq's SIGALRM death penalty, in this process), and a worker that dies mid-job is
restarted by `callflow run`; rq then fails the abandoned job over to its retries."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from typing import Any

import redis
from rq import SimpleWorker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler

from store.redis_client import RECONNECT_BACKOFF, Outage, wait_for_redis
from usecases.bootstrap import QUEUE_NAME

CRON_CONFIG = "workers.cron"
TICK_SECONDS = 1.0
# rq heartbeats a worker three times a job (before waiting, after dequeueing, after the job),
# each three commands sent one at a time, to extend a key that lives 480 s; under load that is
# most of the worker's Redis round trips. One heartbeat in this long is plenty. It is shorter
# than rq's one-second pause after a failed dequeue, so the heartbeat that follows that pause
# (and reports a lost Redis) is always sent.
HEARTBEAT_EVERY_SECONDS = 0.5


class RedisLost(StopRequested):
    """Leave rq's work loop quietly: the caller waits for Redis and starts a fresh worker."""


class PatientWorker(SimpleWorker):
    """An rq worker that hands a Redis outage to its caller instead of quitting with an error,
    and runs each job in this process, keeping its connections from one job to the next."""

    def __init__(self, *args: Any, outage: Outage, **kwargs: Any):
        self.outage = outage
        self.stopping = False
        self._heartbeat_sent = float("-inf")
        super().__init__(*args, **kwargs)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """rq's heartbeat, in one round trip and at most every HEARTBEAT_EVERY_SECONDS; a lost
        Redis ends the work loop (RedisLost) rather than the process."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        recent = time.monotonic() - self._heartbeat_sent < HEARTBEAT_EVERY_SECONDS
        if timeout is None and recent and not self.outage.ongoing:
            return None
        try:
            with self.connection.pipeline(transaction=False) as beat:
                super().heartbeat(timeout, beat)
                beat.execute()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self.outage.failed(error)
            raise RedisLost() from None
        self._heartbeat_sent = time.monotonic()
        if self.outage.ongoing:
            # Redis came back (perhaps empty, having lost this worker's registration): start
            # afresh, so the new worker registers again.
            raise RedisLost()
        return None

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """rq's set_state, without the round trip when the state is already the one held (rq
        sets "idle" after each job and again before waiting for the next)."""
        if pipeline is None and state == getattr(self, "_state", None):
            return
        super().set_state(state, pipeline)

    def request_stop(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: remember that the stop was asked for, then stop as rq does."""
        self.stopping = True
        super().request_stop(signum, frame)

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, thread: Any) -> None:
        if isinstance(exc, redis.ConnectionError):  # the main loop reports and waits it out
            self.outage.failed(exc)
            threading.Event().wait(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, thread)


def _stop_on_signals(stop: threading.Event) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())


def run_worker(client: redis.Redis) -> None:
    """Work the callflow queue until Ctrl-C or SIGTERM, whatever happens to Redis meanwhile."""
    outage = Outage("callflow worker")
    stop = threading.Event()
    while True:
        _stop_on_signals(stop)  # between workers; each worker installs rq's own while it works
        if not wait_for_redis(client, outage, stop):
            return
        worker = PatientWorker([QUEUE_NAME], connection=client, outage=outage)
        try:
            worker.work()
        except (redis.RedisError, OSError) as error:  # rq's start-up or tear-down lost Redis
            outage.failed(error)
        if worker.stopping or stop.is_set():
            return


def run_scheduler(client: redis.Redis, stop: threading.Event) -> None:
    """Until stop: each second, move due delayed jobs to the queue and enqueue due cron jobs.

    The delayed-job lock carries this host's stable name, so a restarted scheduler takes its own
    lock back at once instead of waiting for the dead one's to expire.
    """
    outage = Outage("callflow scheduler")
    delayed = RQScheduler([QUEUE_NAME], connection=client,
                          name=f"callflow-scheduler-{socket.gethostname()}")
    cron = CronScheduler(connection=client)
    cron.load_config_from_file(CRON_CONFIG)
    born = False
    failures = 0
    try:
        while not stop.is_set():
            try:
                if not born:
                    delayed.register_birth()
                    cron.register_birth()
                    born = True
                if not delayed.acquired_locks:
                    delayed.acquire_locks()
                if delayed.acquired_locks:
                    delayed.enqueue_scheduled_jobs()
                delayed.heartbeat()
                if cron.enqueue_jobs():
                    cron.save()
                cron.heartbeat()
            except (redis.RedisError, OSError) as error:
                outage.failed(error)
                failures += 1
                stop.wait(RECONNECT_BACKOFF.compute(failures))
                continue
            failures = 0
            outage.recovered()
            stop.wait(TICK_SECONDS)
    finally:
        with contextlib.suppress(redis.RedisError, OSError):
            if born:
                delayed.release_locks()
                delayed.register_death()
                cron.register_death()
        delayed.connection.close()
        delayed.connection.connection_pool.disconnect()
