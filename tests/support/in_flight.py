"""Counting a test server's requests in progress, so that it stops only once they are done.

A request still running when a test's engine is disposed returns its database connection to the
old pool, which nobody closes: the garbage collector then finds an open psycopg connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable


class InFlight:
    """WSGI middleware that counts the requests it is serving."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        with self._lock:
            self._count += 1
        try:
            # The body is built (and closed) here, so that the count covers all the request does.
            body = self.app(environ, start_response)
            try:
                return list(body)
            finally:
                if hasattr(body, "close"):
                    body.close()
        finally:
            with self._lock:
                self._count -= 1

    def wait_until_idle(self, seconds: float = 10.0) -> bool:
        """Wait for the requests in progress to finish; False if some are still running."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if self._count == 0:
                    return True
            time.sleep(0.02)
        return False
