"""The Prometheus metrics every process counts as it goes (request counts, latencies, decisions,
the Redis circuit's state).

Under gunicorn they are kept in prometheus_client's multiprocess mode: each process writes its
values to files in PROMETHEUS_MULTIPROC_DIR, which must be set before this module is first
imported (service/gunicorn_conf.py and the runner set it), and /metrics adds them up. What is
read from Redis or the database (stream length, lags, backlogs) is read at scrape time by
service/metrics.py instead, never on the call path.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The incoming-call webhook answers in a few milliseconds; the slow end is Redis's time-out.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CircuitState(StrEnum):
    """The Redis circuit breaker's states as metric labels (store/circuit.py's values; its
    half-open is a moment of the open state, not a change it reports)."""

    CLOSED = "closed"
    OPEN = "open"


WEBHOOK_REQUESTS = Counter(
    "callflow_webhook_requests", "Twilio webhook requests answered, by endpoint and status.",
    ["endpoint", "status"])
WEBHOOK_SECONDS = Histogram(
    "callflow_webhook_seconds", "Time to answer a Twilio webhook, by endpoint.", ["endpoint"],
    buckets=LATENCY_BUCKETS)
DECISIONS = Counter(
    "callflow_decisions", "Incoming calls by the decision made for them.", ["outcome"])
# 1 for the state a live process's breaker is in; across processes the highest is kept, so
# open=1 means at least one web process is keeping off Redis.
REDIS_CIRCUIT = Gauge(
    "callflow_redis_circuit", "The call path's Redis circuit breaker: 1 for its current state.",
    ["state"], multiprocess_mode="livemax")


@lru_cache(maxsize=64)
def webhook_counter(endpoint: str, status: int) -> Counter:
    """The request counter's child for an endpoint and status (looked up once each)."""
    return WEBHOOK_REQUESTS.labels(endpoint, str(status))


@lru_cache(maxsize=64)
def webhook_timer(endpoint: str) -> Histogram:
    """The latency histogram's child for an endpoint."""
    return WEBHOOK_SECONDS.labels(endpoint)


@lru_cache(maxsize=64)
def decision_counter(outcome: str) -> Counter:
    """The decision counter's child for an outcome."""
    return DECISIONS.labels(outcome)


def record_circuit_state(state: str) -> None:
    """Note the breaker's new state (called on each change, not per request)."""
    for each in CircuitState:
        REDIS_CIRCUIT.labels(each.value).set(1 if each.value == state else 0)
