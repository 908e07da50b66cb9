"""`callflow register export` and `import` run beside the service on its embedded Redis: 5 one
after another, then 3 at once, each a real process on the same var directory with no REDIS_URL.

Counts commands that failed and times the service's redis-server stopped answering or was
replaced; measures how long each command took.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from bench.faults import Row
from store.embedded_redis import EmbeddedRedis
from tests.faults.processes import ServiceProcess, service_env

IN_TURN = 5
AT_ONCE = 3
EMPTY_REGISTER = (
    "customer_ref,name,phone_numbers,categories,reason,decided_by,decided_on,starts_on,ends_on\n"
)


def _answers(url: str) -> str | None:
    """The server's run id if it answers PING (a new id means a new server), else None."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return str(client.info("server")["run_id"])
    except redis.RedisError:
        return None
    finally:
        client.close()


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    var_dir = workdir / "var"
    env = service_env({"CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(var_dir),
                       "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret",
                       "PUBLIC_BASE_URL": "https://callflow.test"})
    for name in ("REDIS_URL", "CALLFLOW_EMBEDDED_REDIS_URL"):
        env.pop(name, None)
    empty = workdir / "empty.csv"
    empty.write_text(EMPTY_REGISTER)
    argvs = [["register", "export"], ["register", "import", str(empty)]]
    service = EmbeddedRedis(var_dir)  # as `callflow run` starts it
    run_id = _answers(service.url)
    failed = lost = 0
    took: list[float] = []
    try:
        for n in range(IN_TURN):
            began = time.monotonic()
            command = ServiceProcess.cli(argvs[n % 2], env, workdir / f"in-turn-{n}.log").start()
            failed += command.process.wait(120) != 0
            took.append(time.monotonic() - began)
            lost += _answers(service.url) != run_id
        together = [ServiceProcess.cli(argvs[n % 2], env, workdir / f"at-once-{n}.log").start()
                    for n in range(AT_ONCE)]
        failed += sum(command.process.wait(120) != 0 for command in together)
        lost += _answers(service.url) != run_id
    finally:
        service.close()
    return Row(9, f"{IN_TURN} commands in turn, then {AT_ONCE} at once, beside the service",
               IN_TURN + AT_ONCE + IN_TURN + 1, failed + lost,
               "every command succeeds; the service's Redis keeps answering, the same server",
               f"each command {min(took):.1f}-{max(took):.1f} s; Redis lost {lost} times")
