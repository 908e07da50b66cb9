"""Redis connections: tight time-outs on the call path, patient ones for workers."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Measured: redis-py's defaults stall a request 59 s when Redis hangs and ~5 s when it is
# stopped. A caller must never wait on that, so the call path gives up fast and falls back.
CALL_PATH_TIMEOUT = 0.25


def call_path_redis(url: str) -> redis.Redis:
    """A pooled client for webhooks: short time-outs, no retries; bytes, as RQ needs."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CALL_PATH_TIMEOUT,
        socket_timeout=CALL_PATH_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def worker_redis(url: str) -> redis.Redis:
    """A client for RQ: it blocks on dequeue, so no socket read time-out."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=5, socket_timeout=None, health_check_interval=30
    )
