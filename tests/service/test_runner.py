"""`callflow run` end to end: the real processes start, share one Redis, and stop on Ctrl-C."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import redis
from rq import Worker
from rq.cron import CronScheduler, get_cron_job_ids
from rq.job import Job, JobStatus

from usecases.bootstrap import QUEUE_NAME

START_SECONDS = 60.0
STOP_SECONDS = 20.0
CRON_JOB = "workers.register_jobs.sync_routing_cache"
PROC = Path("/proc")
BANNER = "callflow is running"
STARTED = re.compile(r"started (\w+) \(pid (\d+)\)")
EMBEDDED_REDIS = re.compile(r"redis +embedded, (\S+)")
T = TypeVar("T")


def callflow_command() -> str:
    """The console script of the environment running the tests."""
    beside = Path(sys.executable).with_name("callflow")
    found = str(beside) if beside.exists() else shutil.which("callflow")
    assert found, "the callflow console script is not installed (pip install -e '.[test]')"
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def runner_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The embedded defaults, or the PostgreSQL and Redis this session was given (CI); on
    PostgreSQL the session's own fresh schema, never a database's shared public one."""
    return runner_environment(tmp_path, database_url if os.environ.get("DATABASE_URL") else "")


def runner_environment(tmp_path: Path, database_url: str = "") -> dict[str, str]:
    """The embedded defaults, or the given database and this session's Redis."""
    dropped = {"CALLFLOW_EMBEDDED_REDIS_URL", "PUBLIC_BASE_URL", "DATABASE_URL"}
    env = {name: value for name, value in os.environ.items() if name not in dropped}
    env.update(CALLFLOW_ENV="development", CALLFLOW_VAR_DIR=str(tmp_path / "var"))
    if database_url:
        env["DATABASE_URL"] = database_url
    if not env.get("REDIS_URL"):
        env.pop("REDIS_URL", None)
    if "REDIS_URL" in env:
        # The suite's own test database, flushed as the fixtures do: no stale workers or jobs.
        with redis.Redis.from_url(env["REDIS_URL"]) as connection:
            connection.flushdb()
    return env


def healthz_status(port: int, path: str = "/healthz") -> int | None:
    """GET /healthz's status (or another path's), or None while nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_for(
    check: Callable[[], T],
    seconds: float,
    what: str,
    log: Path,
    runner: subprocess.Popen[bytes] | None = None,
) -> T:
    """Poll check until it returns something truthy; fail with the log, early if runner exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if runner is not None and runner.poll() is not None:
            failure = f"{what}: the runner exited with status {runner.returncode}"
            break
        time.sleep(0.25)
    else:
        failure = f"{what} within {seconds:.0f} s"
    raise AssertionError(f"{failure}; its log:\n{log.read_text()[-6000:]}")


def start_runner(env: dict[str, str], port: int, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`callflow run` with one web worker, its output appended to log."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [callflow_command(), "run", "--port", str(port), "--web-workers", "1"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def kill_if_running(runner: subprocess.Popen[bytes], pids: dict[str, int]) -> None:
    """After a failed test: kill the runner and each child's process group (each leads one)."""
    if runner.poll() is None:
        runner.kill()
        runner.wait()
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    if not PROC.exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every process below pid (Linux /proc; elsewhere an empty set)."""
    parents: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def registered_worker_pids(connection: redis.Redis) -> set[int]:
    """The pids of the RQ workers listening on the callflow queue."""
    workers = Worker.all(connection=connection)
    return {worker.pid for worker in workers if QUEUE_NAME in worker.queue_names()}


def registered_scheduler_pids(connection: redis.Redis) -> set[int]:
    """The pids of the live cron schedulers."""
    return {scheduler.pid for scheduler in CronScheduler.all(connection=connection)}


def cron_job_finished(connection: redis.Redis) -> bool:
    """True once a job the cron scheduler enqueued has been run to completion."""
    jobs = Job.fetch_many(get_cron_job_ids(CRON_JOB, connection), connection=connection)
    return any(job is not None and job.get_status() == JobStatus.FINISHED for job in jobs)


def test_run_serves_works_and_stops_cleanly_on_ctrl_c(tmp_path, runner_env):
    env = runner_env
    port = free_port()
    log = tmp_path / "run.log"
    pids: dict[str, int] = {}
    runner = start_runner(env, port, tmp_path, log)
    try:
        answered = wait_for(lambda: healthz_status(port), START_SECONDS, "no answer", log, runner)
        assert answered == 200
        text = wait_for(lambda: BANNER in log.read_text() and log.read_text(), 10, "no banner", log)
        pids.update((name, int(pid)) for name, pid in STARTED.findall(text))
        assert set(pids) == {"web", "pump", "worker", "scheduler"}
        assert f"http://127.0.0.1:{port}/simulator" in text
        assert "manager@example.org" in text
        # The banner comes last, framed, after the children's start-up lines, and names the
        # console where it really is.
        at = text.index(BANNER)
        assert text.rindex("started scheduler (pid") < at
        assert text.rindex("Booting worker") < at
        assert text[:at].rstrip().endswith("=" * 72)
        assert f"console     http://127.0.0.1:{port}/console " in text

        # The access log names the path, never the query string: filters carry phone numbers.
        assert healthz_status(port, "/workspace/calls?number=07700+900999&person=Robin") == 303
        access_line = re.compile(r'"GET /workspace/calls HTTP/1.1" 303 .*')
        logged = wait_for(lambda: access_line.search(log.read_text()), 10, "no access line", log)
        assert "900999" not in log.read_text() and "Robin" not in log.read_text(), logged.group(0)

        listing = subprocess.run(
            [callflow_command(), "register", "list"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "QL-100001" in listing.stdout

        redis_url = env.get("REDIS_URL") or EMBEDDED_REDIS.search(text).group(1)
        with redis.Redis.from_url(redis_url) as connection:
            wait_for(
                lambda: pids["worker"] in registered_worker_pids(connection), 30, "no worker", log
            )
            wait_for(
                lambda: pids["scheduler"] in registered_scheduler_pids(connection),
                30,
                "no cron scheduler",
                log,
            )
            # The scheduler enqueues at once; the worker runs the job with services from the env.
            wait_for(lambda: cron_job_finished(connection), 30, f"{CRON_JOB} never ran", log)
        assert all(alive(pid) for pid in pids.values())
        processes = descendants(runner.pid) | set(pids.values())

        runner.send_signal(signal.SIGINT)
        assert runner.wait(STOP_SECONDS) == 0, log.read_text()[-6000:]
    finally:
        kill_if_running(runner, pids)

    wait_for(lambda: not any(alive(pid) for pid in processes), 5, "children left running", log)
    if not env.get("REDIS_URL"):
        with redis.Redis.from_url(redis_url, socket_connect_timeout=1) as connection:
            try:
                connection.ping()
            except redis.ConnectionError:
                pass
            else:
                raise AssertionError("the embedded Redis still runs after the runner stopped")


def test_the_wsgi_entry_point_keeps_its_start_up_heap_out_of_the_collectors_sight(runner_env):
    # A full collection of the start-up heap takes ~90 ms on the call path; frozen, ~2 ms.
    probe = "import gc, service.wsgi; print(gc.get_freeze_count())"
    env = {**runner_env, "CALLFLOW_ENV": "test"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=60, check=True)
    assert int(done.stdout.split()[-1]) > 10_000


RESTARTED = re.compile(r"worker was killed by SIGKILL; restarted it \(pid (\d+)\)")


def test_run_restarts_a_child_that_dies_and_keeps_serving(tmp_path, runner_env):
    env = runner_env
    port = free_port()
    log = tmp_path / "run.log"
    pids: dict[str, int] = {}
    runner = start_runner(env, port, tmp_path, log)
    try:
        text = wait_for(lambda: BANNER in log.read_text() and log.read_text(), START_SECONDS,
                        "no banner", log, runner)
        pids.update((name, int(pid)) for name, pid in STARTED.findall(text))
        redis_url = env.get("REDIS_URL") or EMBEDDED_REDIS.search(text).group(1)
        os.killpg(pids["worker"], signal.SIGKILL)  # a crash, horse and all

        fresh = int(wait_for(lambda: RESTARTED.search(log.read_text()), 20, "no restart", log,
                             runner).group(1))
        with redis.Redis.from_url(redis_url) as connection:
            wait_for(lambda: fresh in registered_worker_pids(connection), 30,
                     "the restarted worker never listened", log)
        assert healthz_status(port) == 200
        assert "stopping the rest" not in log.read_text()
        assert all(alive(pid) for name, pid in pids.items() if name != "worker")
        pids["restarted"] = fresh

        runner.send_signal(signal.SIGINT)
        assert runner.wait(STOP_SECONDS) == 0, log.read_text()[-6000:]
        wait_for(lambda: not alive(fresh), 5, "the restarted worker left running", log)
    finally:
        kill_if_running(runner, pids)
