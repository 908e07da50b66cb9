"""Redis connections: tight time-outs on the call path, patient ones for workers."""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry

from store.circuit import Circuit
from store.redis_connect import connect

# Measured: redis-py's defaults stall a request 59 s when Redis hangs and ~5 s when it is
# stopped. A caller must never wait on that, so the call path gives up fast and falls back.
# 0.25 s let requests caught in the first moments of a hang queue past 1 s behind each other
# (bench/faults item 3); a healthy round trip is well under 5 ms at 500 calls a second.
CALL_PATH_TIMEOUT = 0.15
# Redis checks a WAIT's time-out on its clock tick (every 100 ms at its default hz of 10), so a
# WAIT can last up to a tick longer than asked; the call path's read time-out allows for both.
REDIS_TICK_SECONDS = 0.1
# A lost Redis is tried again after ~0.5 s, then less and less often, at most every 5 s.
RECONNECT_BACKOFF = ExponentialWithJitterBackoff(cap=5.0, base=0.25)

log = logging.getLogger(__name__)


def call_path_redis(url: str, circuit: Circuit | None = None,
                    replica_wait_ms: int = 0) -> redis.Redis:
    """A pooled client for webhooks: short time-outs, no retries, behind a circuit breaker (so
    that while Redis is away requests do not even try it); bytes, as RQ needs. replica_wait_ms:
    the longest WAIT for replicas its writes may end with, which its read time-out allows for."""
    wait = replica_wait_ms / 1000 + REDIS_TICK_SECONDS if replica_wait_ms else 0.0
    return connect(
        url,
        circuit or Circuit(),
        socket_connect_timeout=CALL_PATH_TIMEOUT,
        socket_timeout=CALL_PATH_TIMEOUT + wait,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def worker_redis(url: str) -> redis.Redis:
    """A client for RQ: it blocks on dequeue, so no socket read time-out."""
    return connect(url, socket_connect_timeout=5, socket_timeout=None, health_check_interval=30)


class Outage:
    """One process's view of a Redis outage: logged once as it starts and once as it ends."""

    def __init__(self, who: str, logger: logging.Logger | None = None):
        self.who = who
        self.log = logger or log
        self.since: float | None = None

    @property
    def ongoing(self) -> bool:
        """True between a failure and the next success."""
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        """Redis failed; log it if it is the start of an outage."""
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s: Redis cannot be reached (%s); retrying with backoff",
                             self.who, type(error).__name__)

    def recovered(self) -> None:
        """Redis answered; log the end of the outage, if there was one."""
        if self.since is not None:
            self.log.warning("%s: Redis can be reached again, after %.0f s", self.who,
                             time.monotonic() - self.since)
            self.since = None


def wait_for_redis(client: redis.Redis, outage: Outage, stop: threading.Event | None = None,
                   backoff: ExponentialWithJitterBackoff = RECONNECT_BACKOFF) -> bool:
    """Ping until Redis answers, backing off between tries; False if stop was set first."""
    failures = 0
    while stop is None or not stop.is_set():
        try:
            client.ping()
        except (redis.RedisError, OSError) as error:
            outage.failed(error)
            failures += 1
            delay = backoff.compute(failures)
            if stop is None:
                time.sleep(delay)
            else:
                stop.wait(delay)
            continue
        outage.recovered()
        return True
    return False


def scheduler_redis(url: str) -> redis.Redis:
    """A client for the scheduler, which never blocks on Redis: a hang is an error in seconds."""
    return connect(url, socket_connect_timeout=5, socket_timeout=5, health_check_interval=30)
