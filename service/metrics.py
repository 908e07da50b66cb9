"""GET /metrics for Prometheus, behind a token: the counters every process keeps (config/metrics.py,
added up across gunicorn's workers) and what is read from Redis and the database at scrape time
(the call-event stream and the call log's lag, spools, dead letters, jobs, agents).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from enum import StrEnum
from time import perf_counter

import redis
from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from config.metrics import MULTIPROC_ENV, webhook_counter, webhook_timer
from console.auth import public
from store.agent_pool import STATE_KEY, Availability
from store.call_events import STREAM_KEY
from store.dead_letters import DeadLetters
from store.models import SpooledBatch
from store.redis_connect import connect
from usecases.bootstrap import Services

SCRAPE_TIMEOUT_SECONDS = 1.0
TWILIO_PREFIX = "/twilio/"


class Source(StrEnum):
    """Where a scrape-time gauge is read from (the label of callflow_metrics_source_up)."""

    REDIS = "redis"
    DATABASE = "database"
    DISK = "disk"


class PipelineCollector(Collector):
    """Reads the pipeline's backlogs when Prometheus scrapes, never on the call path."""

    def __init__(self, services: Services):
        self.services = services
        self._redis: redis.Redis | None = None

    def client(self) -> redis.Redis:
        """A client of its own with short time-outs: a scrape must not hang on Redis."""
        if self._redis is None:
            self._redis = connect(self.services.redis_url,
                                  socket_timeout=SCRAPE_TIMEOUT_SECONDS,
                                  socket_connect_timeout=SCRAPE_TIMEOUT_SECONDS)
        return self._redis

    def collect(self) -> Iterator[Metric]:
        """Every scrape-time gauge, and whether each source could be read."""
        up = GaugeMetricFamily("callflow_metrics_source_up",
                               "1 when this scrape could read the source.", labels=["source"])
        for source, read in ((Source.REDIS, self._from_redis),
                             (Source.DATABASE, self._from_database),
                             (Source.DISK, self._from_disk)):
            try:
                metrics = list(read())
            except (redis.RedisError, OSError, SQLAlchemyError):
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from metrics
        yield up

    def _from_redis(self) -> Iterator[Metric]:
        queue = self.services.queue
        client = self.client()
        with client.pipeline(transaction=False) as pipe:
            pipe.xlen(STREAM_KEY)
            pipe.xrange(STREAM_KEY, count=1)
            pipe.time()
            pipe.hvals(STATE_KEY)
            pipe.llen(queue.key)
            for registry in (FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry):
                pipe.zcard(registry(queue=queue).key)
            length, oldest, (seconds, micros), states, queued, failed, scheduled, started = (
                pipe.execute())
        yield _gauge("callflow_call_event_stream_length",
                     "Call-event batches on the Redis stream not yet in the call log.", length)
        lag = 0.0
        if oldest:
            # A stream entry's id starts with Redis's clock in milliseconds when it was added.
            added_ms = int(oldest[0][0].split(b"-")[0])
            lag = max(0.0, seconds + micros / 1e6 - added_ms / 1000)
        yield _gauge("callflow_call_log_lag_seconds",
                     "Age of the oldest call-event batch not yet in the call log (0: none).", lag)
        jobs = GaugeMetricFamily("callflow_jobs", "RQ jobs by state (scheduled: retries waiting "
                                 "and timers not yet due).", labels=["state"])
        for state, count in (("queued", queued), ("started", started), ("failed", failed),
                             ("scheduled", scheduled)):
            jobs.add_metric([state], count)
        yield jobs
        agents = GaugeMetricFamily("callflow_agents",
                                   "Agents by availability (signed-out agents count as away).",
                                   labels=["availability"])
        counts = {each.value: 0 for each in Availability}
        for value in states:
            counts[value.decode()] = counts.get(value.decode(), 0) + 1
        for availability, count in counts.items():
            agents.add_metric([availability], count)
        yield agents

    def _from_database(self) -> Iterator[Metric]:
        # The call path's sessions: every wait on them is bounded, so a scrape cannot hang.
        with self.services.call_path_sessions() as session:
            letters = DeadLetters(session).count()
            spooled = session.scalar(select(func.count(SpooledBatch.id))) or 0
        yield _gauge("callflow_dead_letters",
                     "Call-event entries the call log refused, set aside for a person.", letters)
        yield _gauge("callflow_spooled_batches_database",
                     "Call-event batches kept in the database while Redis was away.", spooled)

    def _from_disk(self) -> Iterator[Metric]:
        spool = self.services.settings.var_dir / "spool"
        lines = 0
        for path in spool.glob("*.jsonl") if spool.exists() else ():
            with path.open("rb") as file:
                lines += sum(1 for line in file if line.strip())
        yield _gauge("callflow_spooled_batches_disk",
                     "Call-event batches in this host's disk spool while Redis was away.", lines)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def exposition(pipeline: PipelineCollector) -> bytes:
    """The text Prometheus reads: every process's counters and the scrape-time gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(pipeline)
    return generate_latest(registry)


class _ThisProcess(Collector):
    """The default registry's metrics, when there is one process and no shared directory."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def token_matches(expected: str, authorization: str) -> bool:
    """True when the Authorization header carries the metrics token (compared in constant
    time); never with no token configured."""
    if not expected:
        return False
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              expected.encode())


def install(app: Flask, services: Services) -> None:
    """Add GET /metrics (only when a token is configured) and time Twilio's Flask webhooks (the
    incoming call is timed by its own WSGI handler)."""
    token = services.settings.metrics_token
    pipeline = PipelineCollector(services)  # one per process: its Redis pool is reused

    @app.get("/metrics")
    @public  # the token, not a staff sign-in, guards it
    def metrics() -> Response:
        """Prometheus's scrape: 404 when no token is set, 401 without the right one."""
        if not token:
            return Response("not found\n", 404, mimetype="text/plain")
        if not token_matches(token, request.headers.get("Authorization", "")):
            return Response("the metrics need the token (Authorization: Bearer ...)\n", 401,
                            {"WWW-Authenticate": 'Bearer realm="metrics"'},
                            mimetype="text/plain")
        return Response(exposition(pipeline), 200, {"Cache-Control": "no-store"},
                        content_type=CONTENT_TYPE_LATEST)

    @app.before_request
    def _start_timer() -> None:
        if request.path.startswith(TWILIO_PREFIX):
            g.callflow_webhook_started = perf_counter()

    @app.after_request
    def _count_webhook(response: Response) -> Response:
        started = g.get("callflow_webhook_started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule is not None else "unknown"
            webhook_timer(endpoint).observe(perf_counter() - started)
            webhook_counter(endpoint, response.status_code).inc()
        return response

