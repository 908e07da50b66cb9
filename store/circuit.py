"""A per-process circuit breaker for the call path's Redis, and the connections that obey it.

pybreaker (the usual library) holds its lock for the whole guarded call, which would serialise
every Redis round trip of a threaded web worker and, while Redis hangs, queue requests behind
each other's time-outs; this breaker holds its lock only to change state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)

FAILURES_TO_OPEN = 3
RETRY_AFTER_SECONDS = 2.0

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class CircuitOpen(redis.ConnectionError):
    """Refused without touching Redis: it failed just now (a ConnectionError, so every existing
    fallback for an unreachable Redis applies)."""


class Circuit:
    """Opens after a few consecutive failures; then lets one trial through per interval."""

    def __init__(self, failures_to_open: int = FAILURES_TO_OPEN,
                 retry_after: float = RETRY_AFTER_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str], None] | None = None):
        self.failures_to_open = failures_to_open
        self.on_change = on_change  # told "open" or "closed" as the breaker changes (metrics)
        self.retry_after = retry_after
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_at = 0.0

    @property
    def state(self) -> str:
        """closed, open, or half-open (a trial is due or under way)."""
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self.clock() >= self._trial_at else OPEN

    def before(self) -> None:
        """Raise CircuitOpen unless a call may go to Redis now."""
        if self._opened_at is None:
            return
        with self._lock:
            now = self.clock()
            if self._opened_at is None or now >= self._trial_at:
                # One trial per interval: the others keep off Redis until it answers.
                self._trial_at = now + self.retry_after
                return
        raise CircuitOpen("Redis failed just now; not trying again yet")

    def succeeded(self) -> None:
        """Redis answered: close the circuit."""
        if self._failures == 0 and self._opened_at is None:
            return
        with self._lock:
            was_open = self._opened_at is not None
            self._failures = 0
            self._opened_at = None
        if was_open:
            log.warning("Redis is answering again; the call path uses it again")
            if self.on_change is not None:
                self.on_change(CLOSED)

    def failed(self) -> None:
        """Redis did not answer: count it, and open the circuit after a few in a row."""
        with self._lock:
            self._failures += 1
            now = self.clock()
            opening = self._opened_at is None and self._failures >= self.failures_to_open
            if opening:
                self._opened_at = now
            if self._opened_at is not None:
                self._trial_at = now + self.retry_after
        if opening:
            log.warning("Redis is not answering; the call path uses the database and the disk "
                        "spool until it does")
            if self.on_change is not None:
                self.on_change(OPEN)


class _Guarded:
    """Mixed into a redis-py connection class: every command asks the circuit first."""

    circuit: Circuit
    _guarding = False
    _admitted = False  # this command was let through: connect, send and read are one attempt

    def __init__(self, *args: Any, circuit: Circuit, **kwargs: Any):
        self.circuit = circuit
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def connect(self) -> None:
        """Connect unless the circuit is open; a failure to connect counts against it."""
        self._guard(super().connect)  # type: ignore[misc]

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Send unless the circuit is open; a failure to send counts against it."""
        self._guard(super().send_packed_command, command, check_health)  # type: ignore[misc]

    def _guard(self, action: Callable[..., None], *args: Any) -> None:
        outer = not self._guarding  # connect() itself sends a command or two
        if outer:
            if not self._admitted:
                self.circuit.before()
                self._admitted = True
            self._guarding = True
        try:
            action(*args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            if outer:
                self._admitted = False
                self.circuit.failed()
            raise
        finally:
            if outer:
                self._guarding = False

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        """Read a reply; a time-out or lost connection counts against the circuit."""
        try:
            response = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            if not self._guarding:
                self._admitted = False
                self.circuit.failed()
            raise
        except redis.ResponseError:
            # An error reply (NOSCRIPT after a restart, say) is still Redis answering.
            if not self._guarding:
                self._admitted = False
                self.circuit.succeeded()
            raise
        if not self._guarding:
            self._admitted = False
            self.circuit.succeeded()
        return response


class GuardedConnection(_Guarded, redis.Connection):
    """A TCP connection that obeys a circuit."""


class GuardedUnixConnection(_Guarded, redis.UnixDomainSocketConnection):
    """A unix-socket connection (the embedded server) that obeys a circuit."""
