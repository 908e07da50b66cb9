"""Load benchmark for POST /twilio/voice/incoming: the real path against a constant-TwiML ceiling.

Run: .venv/bin/python -m bench.incoming_calls [--entries 100000] [--rates 250,500,1000]
     [--duration 10] [--workers auto|2] [--database-url URL] [--redis-url URL] [--profile 5000]

It prepares a register of N entries (bulk SQL, not RegisterService.save per row), builds the
routing cache the way the service does, starts the real service and the ceiling app under the
same gunicorn settings (sync workers, loopback only), and drives both from a separate process
with an asyncio generator: one request per connection, so no sync worker is ever held by an
idle keep-alive connection (wrk's pacing does that). See bench/README.md for what it reports.

The load generator's process imports this module too (multiprocessing "spawn"), so the
service's own packages are imported inside the functions that need them, not at the top.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

PATH = "/twilio/voice/incoming"
BASE_URL = "https://callflow.bench"  # PUBLIC_BASE_URL: what the generator signs against
HOST_HEADER = "callflow.bench"
TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "b" * 32
CENTRE_NUMBER = "+441632960000"
OPENING_HOURS = "Mon-Sun 00:00-24:00"  # always open, so the common path runs: conference TwiML
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
CEILING_APP = "bench.ceiling_app:create_app()"
REAL_APP = "service.wsgi:app"

# Twilio sends a withheld caller as one of these (see callflow.phone.WITHHELD_FORMS).
WITHHELD_FROM = ("anonymous", "+266696687", "restricted", "unavailable", "")
# Twilio's CallToken is a long opaque value on every incoming call; it is signed like the rest.
CALL_TOKEN = "%7B%22parentCallInfoToken%22%3A%22" + "eyJhbGciOiJFUzI1NiJ9" * 18 + "%22%7D"

# --- the number space -------------------------------------------------------------------------
# Ofcom keeps 0113 496 0xxx, 020 7946 0xxx and friends for drama. A register of a million needs
# more numbers than those ranges hold, so the benchmark uses their neighbours: twenty exchanges
# around 496 in eleven geographic areas, and sixty London blocks around 7946. Each prefix has
# 10,000 numbers; numbers are dealt round-robin so even a small register spans every prefix.
_AREAS = ("113", "114", "116", "117", "118", "121", "131", "141", "151", "161", "191")
PREFIXES = tuple(f"+44{area}{exchange}" for area in _AREAS for exchange in range(480, 500)) + tuple(
    f"+442079{block:02d}" for block in range(40, 100)
)
PER_PREFIX = 10_000
NUMBER_SPACE = len(PREFIXES) * PER_PREFIX


def number_at(index: int) -> str:
    """The index-th number of the benchmark's number space, in E.164."""
    if not 0 <= index < NUMBER_SPACE:
        raise ValueError(f"number index {index} outside 0..{NUMBER_SPACE - 1}")
    prefix, suffix = PREFIXES[index % len(PREFIXES)], index // len(PREFIXES)
    return f"{prefix}{suffix:04d}"


# --- the register -----------------------------------------------------------------------------
# (arrangement, share of entries). Lapsed and lifted entries are in the database but not in the
# routing cache; upcoming ones are cached but do not apply yet. Together they exercise every
# branch of the lookup and of decide() that a mostly-open centre reaches.
ARRANGEMENTS = (
    ("plain", 0.30),
    ("designated_fallback", 0.12),
    ("designated_voicemail", 0.10),
    ("windows", 0.15),
    ("windows_designated", 0.05),
    ("written_only", 0.15),
    ("upcoming", 0.05),
    ("lapsed", 0.05),
    ("lifted", 0.03),
)
WINDOWS = (
    "Mon-Fri 10:00-12:00",
    "Tue,Thu 14:00-16:00",
    "Mon-Sun 00:00-24:00",
    "Mon-Sun 08:00-20:00",
    "Sat-Sun 10:00-11:00",
    "Mon,Wed,Fri 09:00-10:30; Tue 15:00-17:00",
)
PHONES_PER_ENTRY = ((1, 0.78), (2, 0.18), (3, 0.04))
MANAGERS = 4
STAFF = 40

STAFF_COLUMNS = ("id", "email", "name", "role", "client_identity", "phone_number",
                 "password_hash", "active", "created_at")
ENTRY_COLUMNS = (
    "id", "customer_ref", "name", "categories", "reason", "written_only", "call_windows",
    "designated_contact_id", "fallback_voicemail", "fallback_contact_id",
    "visits_by_appointment", "closed_issues", "staff_notes", "decided_by_id", "decided_on",
    "starts_on", "ends_on", "review_on", "notice_sent_on", "lifted_at", "lifted_by_id",
    "lifted_reason", "lapse_recorded_at", "anonymised_at", "created_at", "updated_at",
    "postal_address", "evidence", "no_warning_reason", "not_told_reason", "adjustments",
    "written_only_exception", "representatives",
)
PHONE_COLUMNS = ("id", "entry_id", "number", "position")


def _chooser(table: tuple[tuple[object, float], ...]):
    values = [value for value, _ in table]
    edges = []
    total = 0.0
    for _, weight in table:
        total += weight
        edges.append(total)

    def choose(rng: random.Random):
        return values[min(bisect.bisect(edges, rng.random() * total), len(values) - 1)]

    return choose


def _stamp(moment: datetime) -> str:
    # Both SQLite (as SQLAlchemy stores it) and PostgreSQL's COPY read this form.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class Register:
    """What was loaded: counts by arrangement, and how many numbers the register holds."""

    entries: int
    phones: int
    by_arrangement: dict[str, int]
    load_seconds: float = 0.0
    cache_seconds: float = 0.0
    cached_numbers: int = 0


def register_rows(entries: int, today: date, now: datetime, seed: int):
    """(staff rows, entry rows, phone rows, counts): plain values for executemany or COPY."""
    from callflow.schedule import parse_schedule

    rng = random.Random(seed)
    arrangement_of = _chooser(ARRANGEMENTS)
    phones_of = _chooser(PHONES_PER_ENTRY)
    windows = [str(parse_schedule(text)) for text in WINDOWS]  # canonical, as the register keeps
    stamp = _stamp(now)
    day = {offset: (today + timedelta(days=offset)).isoformat() for offset in (-30, -1, 10, 150,
                                                                               180)}
    staff = [
        (i, f"bench{i}@example.org", f"Bench Staff {i}", "manager" if i <= MANAGERS else "agent",
         f"bench-agent-{i}", None, None, 1, stamp)
        for i in range(1, STAFF + 1)
    ]
    agents = range(MANAGERS + 1, STAFF + 1)
    entry_rows: list[tuple] = []
    phone_rows: list[tuple] = []
    counts: Counter[str] = Counter()
    phone_index = 0
    for entry_id in range(1, entries + 1):
        kind = arrangement_of(rng)
        counts[kind] += 1
        written = kind == "written_only"
        call_windows = rng.choice(windows) if kind.startswith("windows") else ""
        designated = rng.choice(agents) if kind.startswith("designated") or kind == (
            "windows_designated") else None
        fallback = rng.choice(agents) if kind == "designated_fallback" else None
        voicemail = int(designated is not None and fallback is None)
        starts = day[10] if kind == "upcoming" else day[-30]
        ends = day[-1] if kind == "lapsed" else day[180]
        lifted = kind == "lifted"
        entry_rows.append((
            entry_id, f"BENCH{entry_id:07d}", f"Bench Customer {entry_id}",
            '["aggressive_abusive"]', "Benchmark entry.", int(written), call_windows, designated,
            voicemail, fallback, 0, "[]", "", 1 + entry_id % MANAGERS, day[-30], starts, ends,
            day[150], day[-30], stamp if lifted else None, 1 if lifted else None,
            "Benchmark lift." if lifted else None, None, None, stamp, stamp,
            "1 Bench Street", '["written: benchmark record"]', "Benchmark entry.", "", "[]", "",
            "[]",
        ))
        for position in range(phones_of(rng)):
            phone_rows.append((phone_index + 1, entry_id, number_at(phone_index), position))
            phone_index += 1
    return staff, entry_rows, phone_rows, dict(counts)


def _insert(connection, dialect: str, table: str, columns: tuple[str, ...], rows) -> None:
    names = ", ".join(columns)
    if dialect == "postgresql":
        with connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({names}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    connection.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def load_register(engine, entries: int, today: date, now: datetime, seed: int) -> Register:
    """Migrate the schema and bulk-load staff, entries and their numbers in one transaction."""
    from store import migrate

    # Entries have 1.26 numbers on average; keep a third of the space for callers not on it.
    if entries * 2 > NUMBER_SPACE:
        raise SystemExit(f"--entries {entries}: at most {NUMBER_SPACE // 2} fit the number space")
    started = time.perf_counter()
    migrate.upgrade(engine)
    staff, entry_rows, phone_rows, counts = register_rows(entries, today, now, seed)
    dialect = engine.dialect.name
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        _insert(connection, dialect, "staff", STAFF_COLUMNS, staff)
        _insert(connection, dialect, "register_entries", ENTRY_COLUMNS, entry_rows)
        _insert(connection, dialect, "entry_phones", PHONE_COLUMNS, phone_rows)
        connection.commit()
        if dialect == "postgresql":
            connection.execute("ANALYZE")
            connection.commit()
    finally:
        raw.close()
    return Register(entries, len(phone_rows), counts,
                    load_seconds=time.perf_counter() - started)


# --- callers and signed requests ----------------------------------------------------------------

def parse_mix(text: str) -> tuple[float, float, float]:
    """'40,50,10': shares of callers on the register, not on it, and withheld."""
    parts = [float(part) for part in text.split(",")]
    if len(parts) != 3 or any(p < 0 for p in parts) or not sum(parts):
        raise argparse.ArgumentTypeError("--mix takes three shares: on,not-on,withheld")
    total = sum(parts)
    return parts[0] / total, parts[1] / total, parts[2] / total


def draw_callers(count: int, register_phones: int, mix: tuple[float, float, float],
                 seed: int) -> list[tuple[str, str]]:
    """(kind, From) for each request of the pool, drawn at random."""
    rng = random.Random(seed)
    on, off, _ = mix
    callers = []
    for _ in range(count):
        r = rng.random()
        if r < on:
            callers.append(("on_register", number_at(rng.randrange(register_phones))))
        elif r < on + off:
            callers.append(("not_on_register",
                            number_at(rng.randrange(register_phones, NUMBER_SPACE))))
        else:
            callers.append(("withheld", rng.choice(WITHHELD_FROM)))
    return callers


def call_params(call_sid: str, caller: str) -> dict[str, str]:
    """The parameters of an incoming-call webhook as Twilio sends them."""
    country = "GB" if caller.startswith("+44") else ""
    return {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid,
        "CallStatus": "ringing", "CallToken": CALL_TOKEN, "Called": CENTRE_NUMBER,
        "CalledCity": "", "CalledCountry": "GB", "CalledState": "", "CalledZip": "",
        "Caller": caller, "CallerCity": "", "CallerCountry": country, "CallerState": "",
        "CallerZip": "", "Direction": "inbound", "From": caller, "FromCity": "",
        "FromCountry": country, "FromState": "", "FromZip": "",
        "StirVerstat": "TN-Validation-Passed-A", "To": CENTRE_NUMBER, "ToCity": "",
        "ToCountry": "GB", "ToState": "", "ToZip": "",
    }


@dataclass(frozen=True)
class SignedCall:
    """One signed webhook: its form body and X-Twilio-Signature."""

    body: bytes
    signature: str


def sign_calls(callers: list[tuple[str, str]], run_id: int) -> list[SignedCall]:
    """Sign every call of the pool ahead of the run, so signing never limits the generator."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    url = BASE_URL + PATH
    calls = []
    for i, (_, caller) in enumerate(callers):
        params = call_params(f"CA{run_id:08x}{i:024x}", caller)
        calls.append(SignedCall(urlencode(params).encode(),
                                validator.compute_signature(url, params)))
    return calls


def http_request(call: SignedCall) -> bytes:
    """The raw HTTP/1.1 request Twilio would send, closing the connection after the answer."""
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {HOST_HEADER}\r\nUser-Agent: TwilioProxy/1.1\r\n"
        "Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {call.signature}\r\nContent-Length: {len(call.body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + call.body


# --- the load generator (its own process) -------------------------------------------------------

def verdict(data: bytes) -> str:
    """'conference', 'gather', 'record' or 'other' for a 200 text/xml TwiML; else the fault."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return "error: truncated response"
    lines = head.split(b"\r\n")
    status = lines[0][9:12]
    if status != b"200":
        return f"error: status {status.decode(errors='replace')}"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if not headers.get(b"content-type", b"").startswith(b"text/xml"):
        return f"error: content type {headers.get(b'content-type', b'none').decode()}"
    length = headers.get(b"content-length")
    if length is not None and int(length) != len(body):
        return "error: short body"
    if not body.startswith(b"<?xml") or b"<Response" not in body:
        return "error: not TwiML"
    for tag, kind in ((b"<Conference", "conference"), (b"<Gather", "gather"),
                      (b"<Record", "record")):
        if tag in body:
            return kind
    return "other"


class _Exchange(asyncio.Protocol):
    """One request on its own connection; the server's close ends the answer."""

    def __init__(self, payload: bytes, done: asyncio.Future):
        self.payload = payload
        self.done = done
        self.chunks: list[bytes] = []

    def connection_made(self, transport) -> None:
        transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def connection_lost(self, exc) -> None:
        if self.done.done():
            return
        if exc is not None and not self.chunks:
            self.done.set_exception(exc)
        else:
            self.done.set_result(b"".join(self.chunks))


@dataclass
class Tally:
    """What one phase of load saw."""

    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    started: int = 0

    def summary(self, wall: float, cpu: float, span: float | None = None) -> dict:
        """Counts, rates and latency percentiles in milliseconds; span is the open loop's
        sending window (its wall time also covers waiting for the last answers)."""
        ok = sum(self.kinds.values())
        return {
            "sent": self.started, "ok": ok, "errors": dict(self.errors),
            "error_count": sum(self.errors.values()), "answers": dict(self.kinds),
            "seconds": round(wall, 3), "ok_per_second": round(ok / wall, 1),
            "sent_per_second": round(self.started / (span or wall), 1),
            "latency_ms": percentiles(self.latencies),
            "lag_ms": percentiles(self.lags),
            "generator_cpu_share": round(cpu / wall, 3),
            "generator_cpu_us_per_request": round(1e6 * cpu / max(1, self.started), 1),
        }


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max, in milliseconds."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p99.9": at(0.999),
            "max": round(1000 * ordered[-1], 3), "mean": round(1000 * statistics.fmean(ordered), 3)}


class Generator:
    """Sends the pool's requests, cycling through it, from inside the generator process."""

    def __init__(self, payloads: list[bytes], timeout: float):
        self.payloads = payloads
        self.timeout = timeout
        self.cursor = 0

    def _next(self) -> bytes:
        payload = self.payloads[self.cursor]
        self.cursor = (self.cursor + 1) % len(self.payloads)
        return payload

    async def _one(self, host: str, port: int, tally: Tally, scheduled: float | None) -> None:
        # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
        loop = asyncio.get_running_loop()
        payload = self._next()
        started = time.perf_counter()
        tally.started += 1
        if scheduled is not None:
            tally.lags.append(max(0.0, started - scheduled))
        done = loop.create_future()
        transport = None
        try:
            async with asyncio.timeout(self.timeout):
                transport, _ = await loop.create_connection(
                    lambda: _Exchange(payload, done), host, port)
                data = await done
        except TimeoutError:
            if transport is not None:
                transport.abort()
            tally.errors["timeout"] += 1
            return
        except OSError as error:
            tally.errors[f"error: {type(error).__name__}"] += 1
            return
        finished = time.perf_counter()
        kind = verdict(data)
        if kind.startswith("error"):
            tally.errors[kind] += 1
        else:
            tally.kinds[kind] += 1
            tally.latencies.append(finished - started)

    async def closed_loop(self, host: str, port: int, concurrency: int, duration: float) -> Tally:
        """Keep `concurrency` requests in flight for `duration` seconds: saturation."""
        tally = Tally()
        end = time.perf_counter() + duration

        async def client() -> None:
            while time.perf_counter() < end:
                await self._one(host, port, tally, None)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return tally

    async def open_loop(self, host: str, port: int, rate: float, duration: float,
                        seed: int) -> Tally:
        """Poisson arrivals at `rate`/s for `duration` s, whatever the answers take."""
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        tally = Tally()
        at = time.perf_counter() + 0.01
        end = at + duration
        pending: set[asyncio.Task] = set()
        while True:
            at += rng.expovariate(rate)
            if at >= end:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(self._one(host, port, tally, at))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=self.timeout + 1)
        return tally


def _new_loop(kind: str) -> tuple[asyncio.AbstractEventLoop, str]:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop

            return uvloop.new_event_loop(), "uvloop"
        except ImportError:
            if kind == "uvloop":
                raise
    return asyncio.new_event_loop(), "asyncio"


def generator_main(pipe, callers: list[tuple[str, str]], run_id: int, loop_kind: str,
                   timeout: float) -> None:
    """The generator process: sign the pool, then run the phases the parent asks for."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    started = time.perf_counter()
    payloads = [http_request(call) for call in sign_calls(callers, run_id)]
    loop, loop_name = _new_loop(loop_kind)
    asyncio.set_event_loop(loop)
    generator = Generator(payloads, timeout)
    pipe.send({"signed": len(payloads), "signing_seconds": time.perf_counter() - started,
               "loop": loop_name})
    gc.freeze()  # the pool is long-lived; keep the collector off it during phases
    while True:
        command = pipe.recv()
        if command["op"] == "stop":
            break
        host, port, duration = command["host"], command["port"], command["duration"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if command["op"] == "closed":
            tally = loop.run_until_complete(
                generator.closed_loop(host, port, command["concurrency"], duration))
        else:
            tally = loop.run_until_complete(
                generator.open_loop(host, port, command["rate"], duration, command["seed"]))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        summary = tally.summary(wall, cpu, None if command["op"] == "closed" else duration)
        if command.get("raw"):
            summary["latencies"] = tally.latencies
        pipe.send(summary)
    loop.close()


class GeneratorProcess:
    """The parent's handle on the generator process."""

    def __init__(self, callers, run_id: int, loop_kind: str, timeout: float):
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=generator_main, args=(child, callers, run_id, loop_kind, timeout),
            name="callflow-bench-generator", daemon=True)
        self.process.start()
        self.info = self.pipe.recv()

    def run(self, **command) -> dict:
        """Run one phase and return its summary."""
        self.pipe.send(command)
        return self.pipe.recv()

    def close(self) -> None:
        """Stop the generator process."""
        if self.process.is_alive():
            self.pipe.send({"op": "stop"})
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# --- the server ---------------------------------------------------------------------------------

def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICKS


def wait_for_quiet(max_seconds: float, threshold: float = 0.3) -> float:
    """Wait (at most max_seconds) for a second in which the machine's other work uses fewer than
    `threshold` cores; returns the busy cores last seen. Other people's test runs share it."""
    deadline = time.monotonic() + max_seconds
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        if busy < threshold or time.monotonic() >= deadline:
            return round(busy, 2)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Gunicorn:
    """gunicorn on a free loopback port, started and stopped by us alone: sync workers, or
    gthread with 4 threads each (what `callflow run` and the Procfile run)."""

    def __init__(self, app: str, workers: int, env: dict[str, str], log_dir: Path,
                 worker_class: str = "sync"):
        self.app, self.workers = app, workers
        self.port = free_port()
        self.log = log_dir / f"gunicorn-{app.split(':')[0]}-{workers}.log"
        threads = ["--threads", "4"] if worker_class == "gthread" else []
        command = [
            sys.executable, "-m", "gunicorn", "--worker-class", worker_class, *threads,
            "--workers", str(workers),
            "--bind", f"127.0.0.1:{self.port}", "--backlog", "2048", "--timeout", "30",
            "--graceful-timeout", "5", "--log-level", "warning", "--error-logfile", str(self.log),
            app,
        ]
        self.command = " ".join(command[1:])
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, probe: bytes, seconds: float = 60) -> None:
        """Wait until every worker is up and the app answers a signed call with 200."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log}")
            if len(self.worker_pids()) == self.workers:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                        sock.sendall(probe)
                        answer = b""
                        while chunk := sock.recv(65536):
                            answer += chunk
                    kind = verdict(answer)
                    if not kind.startswith("error"):
                        return
                    raise SystemExit(f"{self.app} answered the probe with {kind}: "
                                     f"{answer[:300]!r}; see {self.log}")
                except OSError:
                    pass
            time.sleep(0.1)
        raise SystemExit(f"{self.app} did not answer within {seconds} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of our gunicorn master)."""
        return _children(self.process.pid)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the master and by all workers."""
        return {"master": _cpu_seconds(self.process.pid),
                "workers": sum(_cpu_seconds(pid) for pid in self.worker_pids())}

    def stop(self) -> None:
        """SIGTERM our gunicorn master (it stops its workers), then SIGKILL if it lingers."""
        end_process(self.process)


def end_process(process: subprocess.Popen, seconds: float = 15) -> None:
    """End a process the bench started, by its pid: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Redis bookkeeping --------------------------------------------------------------------------

def redis_counters(client) -> dict[str, float]:
    """Connections received so far, clients connected now, and Redis's CPU seconds."""
    stats, clients, cpu = client.info("stats"), client.info("clients"), client.info("cpu")
    return {
        "total_connections_received": stats["total_connections_received"],
        "connected_clients": clients["connected_clients"],
        "cpu_seconds": cpu["used_cpu_user"] + cpu["used_cpu_sys"],
    }


def db_client_ids(client) -> set[int]:
    """Ids of the connections on this client's database, other than the bench's own."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    own = client.client_id()
    return {int(c["id"]) for c in client.client_list()
            if int(c.get("db", -1)) == db and int(c["id"]) != own}


def clear_call_state(client) -> None:
    """Drop the event stream, live calls and RQ jobs between phases; keep the routing cache."""
    from store.call_events import STREAM_KEY

    client.unlink(STREAM_KEY)
    for pattern in ("callflow:live:*", "rq:*"):
        batch = []
        for key in client.scan_iter(pattern, count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)


# --- phases -------------------------------------------------------------------------------------

@dataclass
class Target:
    """A running app the generator is pointed at, and what a phase cost it."""

    name: str
    server: Gunicorn
    redis: object

    def phase(self, generator: GeneratorProcess, quiet_wait: float = 0, **command) -> dict:
        """Run one phase, adding the server's and Redis's side of it to the generator's."""
        idle_before = wait_for_quiet(quiet_wait) if quiet_wait else None
        before_cpu, before_redis = self.server.cpu_seconds(), redis_counters(self.redis)
        before_machine = machine_busy_seconds()
        before_ids = db_client_ids(self.redis)
        result = generator.run(host="127.0.0.1", port=self.server.port, **command)
        after_cpu, after_redis = self.server.cpu_seconds(), redis_counters(self.redis)
        machine = machine_busy_seconds() - before_machine
        after_ids = db_client_ids(self.redis)
        seconds = result["seconds"]
        worker_cpu = after_cpu["workers"] - before_cpu["workers"]
        redis_cpu = after_redis["cpu_seconds"] - before_redis["cpu_seconds"]
        ours = (worker_cpu + after_cpu["master"] - before_cpu["master"] + redis_cpu
                + result["generator_cpu_share"] * seconds)
        new_connections = (after_redis["total_connections_received"]
                           - before_redis["total_connections_received"])
        result.update(
            server_workers_cpu_seconds=round(worker_cpu, 3),
            server_master_cpu_seconds=round(after_cpu["master"] - before_cpu["master"], 3),
            redis_cpu_seconds=round(redis_cpu, 3),
            server_workers_cpu_share=round(worker_cpu / seconds, 3),
            server_cpu_us_per_request=round(1e6 * worker_cpu / max(1, result["ok"]), 1),
            redis_cpu_share=round(redis_cpu / seconds, 3),
            # The machine is shared: whatever else ran during the phase took cores from us.
            machine_busy_cores=round(machine / seconds, 2),
            other_processes_cores=round(max(0.0, machine - ours) / seconds, 2),
            redis_new_connections=new_connections,
            redis_connected_clients=after_redis["connected_clients"],
            # total_connections_received counts every user of a shared Redis; the connections
            # on the benchmark's own database show whether the workers kept theirs.
            redis_db_connections=len(after_ids),
            redis_db_connections_new=len(after_ids - before_ids),
            machine_busy_cores_before=idle_before,
        )
        return result


def warm_up(target: Target, generator: GeneratorProcess, seconds: float = 1.5) -> None:
    """Every worker imports, connects and fills its caches before anything is measured."""
    target.phase(generator, op="closed", concurrency=8, duration=seconds)


def start(app: str, workers: int, env: dict[str, str], log_dir: Path, probe: bytes,
          redis_client, name: str) -> Target:
    """Start an app under gunicorn and wait for it."""
    server = Gunicorn(app, workers, env, log_dir)
    try:
        server.wait_ready(probe)
    except BaseException:
        server.stop()
        raise
    return Target(name, server, redis_client)


def _merge(phases: list[dict]) -> dict:
    """One saturation result from its slices."""
    seconds = sum(p["seconds"] for p in phases)
    ok = sum(p["ok"] for p in phases)
    latencies = [x for p in phases for x in p.pop("latencies", [])]
    errors: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    for p in phases:
        errors.update(p["errors"])
        answers.update(p["answers"])
    worker_cpu = sum(p["server_workers_cpu_seconds"] for p in phases)
    service_cpu = worker_cpu + sum(p["server_master_cpu_seconds"] + p["redis_cpu_seconds"]
                                   for p in phases)

    def mean(key: str) -> float:
        return round(sum(p[key] * p["seconds"] for p in phases) / seconds, 3)

    return {
        "sent": sum(p["sent"] for p in phases), "ok": ok, "errors": dict(errors),
        "error_count": sum(errors.values()), "answers": dict(answers),
        "seconds": round(seconds, 3), "ok_per_second": round(ok / seconds, 1),
        "slices_ok_per_second": [p["ok_per_second"] for p in phases],
        "latency_ms": percentiles(latencies),
        "server_cpu_us_per_request": round(1e6 * worker_cpu / max(1, ok), 1),
        # gunicorn (master and workers) and Redis together: what a request costs the machine,
        # less sensitive than answers/s to whatever else shares the cores.
        "service_cpu_us_per_request": round(1e6 * service_cpu / max(1, ok), 1),
        "server_workers_cpu_share": round(worker_cpu / seconds, 3),
        "generator_cpu_share": mean("generator_cpu_share"),
        "redis_cpu_share": mean("redis_cpu_share"),
        "machine_busy_cores": mean("machine_busy_cores"),
        "other_processes_cores": mean("other_processes_cores"),
        "redis_new_connections": sum(p["redis_new_connections"] for p in phases),
        "redis_db_connections_new": sum(p["redis_db_connections_new"] for p in phases),
        "redis_db_connections": phases[-1]["redis_db_connections"],
    }


def saturate(targets: list[Target], generator: GeneratorProcess, concurrency: int,
             seconds: float, slices: int, quiet_wait: float) -> dict[str, dict]:
    """Closed-loop throughput of each target, in alternating slices (A B B A ...), so that
    whatever else the machine runs meanwhile weighs on every target alike."""
    parts: dict[str, list[dict]] = {target.name: [] for target in targets}
    for i in range(slices):
        for j, target in enumerate(targets if i % 2 == 0 else targets[::-1]):
            parts[target.name].append(target.phase(
                generator, quiet_wait=quiet_wait if j == 0 else 0, op="closed",
                concurrency=concurrency, duration=seconds / slices, raw=True))
        for target in targets:
            clear_call_state(target.redis)
    return {name: _merge(phases) for name, phases in parts.items()}


def start_both(workers: int, env, log_dir: Path, probe: bytes, redis_client,
               generator: GeneratorProcess) -> list[Target]:
    """The ceiling and the real app, side by side under the same gunicorn settings, warm."""
    targets: list[Target] = []
    try:
        for name, app in (("ceiling", CEILING_APP), ("real", REAL_APP)):
            targets.append(start(app, workers, env, log_dir, probe, redis_client, name))
        for target in targets:
            warm_up(target, generator)
        clear_call_state(redis_client)
    except BaseException:
        for target in targets:
            target.server.stop()
        raise
    return targets


def search_workers(candidates: list[int], env, log_dir, probe, redis_client,
                   generator: GeneratorProcess, args) -> list[dict]:
    """Saturation throughput of both apps for each worker count."""
    table = []
    for workers in candidates:
        targets = start_both(workers, env, log_dir, probe, redis_client, generator)
        try:
            found = saturate(targets, generator, args.concurrency, args.search_duration,
                             max(2, int(args.search_duration // 2)), args.quiet_wait)
        finally:
            for target in targets:
                target.server.stop()
        row = {"workers": workers, "ceiling": found["ceiling"]["ok_per_second"],
               "real": found["real"]["ok_per_second"],
               "errors": found["ceiling"]["error_count"] + found["real"]["error_count"],
               "other_processes_cores": found["real"]["other_processes_cores"]}
        row["ratio"] = round(row["real"] / row["ceiling"], 3) if row["ceiling"] else None
        print(f"  workers {workers}: ceiling {row['ceiling']:,.0f}/s, real {row['real']:,.0f}/s,"
              f" ratio {row['ratio']:.0%} (other processes {row['other_processes_cores']:.2f}"
              " cores)", flush=True)
        table.append(row)
    return table


def measure(targets: list[Target], generator: GeneratorProcess, args) -> dict[str, dict]:
    """Saturation (interleaved), then each open-loop rate on each app."""
    found = saturate(targets, generator, args.concurrency, args.duration, args.slices,
                     args.quiet_wait)
    results = {target.name: {"saturation": found[target.name], "rates": {}}
               for target in targets}
    print("   saturation: " + ", ".join(
        f"{name} {found[name]['ok_per_second']:,.0f}/s (others "
        f"{found[name]['other_processes_cores']:.2f} cores)" for name in found), flush=True)
    for i, rate in enumerate(args.rates):
        for target in targets[::-1]:  # the real path first: its figures matter most
            warm_up(target, generator, 0.5)
            phase = target.phase(generator, op="open", rate=rate, duration=args.duration,
                                 seed=args.seed + i, quiet_wait=args.quiet_wait)
            results[target.name]["rates"][str(rate)] = phase
            clear_call_state(target.redis)
            print(f"   {rate}/s {target.name}: p50 {_ms(phase, 'p50')} ms, p99 "
                  f"{_ms(phase, 'p99')} ms, errors {phase['error_count']} (others "
                  f"{phase['other_processes_cores']:.2f} cores)", flush=True)
    return results


# --- the profile --------------------------------------------------------------------------------

def _environ(call: SignedCall) -> dict:
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(
        path=PATH, method="POST", base_url=f"http://{HOST_HEADER}", data=call.body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": call.signature})
    try:
        return builder.get_environ()
    finally:
        builder.close()


def _environ_get(path: str):
    from werkzeug.test import EnvironBuilder

    def build() -> dict:
        builder = EnvironBuilder(path=path, method="GET", base_url=f"http://{HOST_HEADER}")
        try:
            return builder.get_environ()
        finally:
            builder.close()

    return build


def _through_wsgi(app, environs: list[dict]) -> tuple[float, float]:
    """(wall, CPU) mean µs per request calling the WSGI app directly (no HTTP server)."""
    statuses: Counter[str] = Counter()

    def start_response(status, headers, exc_info=None):
        statuses[status] += 1

    started, cpu = time.perf_counter(), time.process_time()
    for environ in environs:
        b"".join(app(environ, start_response))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if set(statuses) != {"200 OK"}:
        raise SystemExit(f"profile: unexpected answers {dict(statuses)}")
    return 1e6 * elapsed / len(environs), 1e6 * cpu / len(environs)


def _per_call(fn, inputs: list, repeats: int = 5) -> dict[str, float]:
    """Best-of-`repeats` mean wall and CPU µs of fn(x) over inputs (best, to keep the noise of a
    shared machine out; the CPU figure leaves out time spent waiting for Redis)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        started, cpu0 = time.perf_counter(), time.process_time()
        for x in inputs:
            fn(x)
        wall = min(wall, (time.perf_counter() - started) / len(inputs))
        cpu = min(cpu, (time.process_time() - cpu0) / len(inputs))
    return {"wall_us": round(1e6 * wall, 2), "cpu_us": round(1e6 * cpu, 2)}


def decisions_of(services, today: date):
    """A decision for a caller not on the register, now (the common path)."""
    from callflow.decision import Caller, decide
    from config import clock
    from config.centre import centre_for

    now = clock.now_utc()
    yield decide(Caller(call_sid="CA" + "0" * 32, number="+441134800000"),
                 centre_for(services.settings, now.year), now)


def _stubs(app, services, calls: list[SignedCall]) -> dict[str, object]:
    """Each part of the real path replaced by a stub that answers what it would have answered
    (precomputed), for measuring what the part costs inside a whole request. Isolated loops run
    with warm caches and understate it; a profiler's own overhead distorts it."""
    from unittest import mock

    from callflow.phone import caller_key
    from config import clock
    from store.routing_cache import CACHE_KEY
    from webhooks import incoming, signature, voice

    today = clock.now_utc().astimezone(services.settings.tz).date()
    forms = {c.body: signature.parse_form(c.body) for c in calls}
    listed: dict[str, tuple[bool, bytes | None]] = {}
    for pairs, _ in forms.values():
        number = caller_key(dict(pairs).get("From"))
        if number is not None:
            value = services.redis.hget(CACHE_KEY, number)
            listed[number] = (value is None, value)
    decisions: dict = {}
    real_decide = incoming.decide

    def remembered_decide(caller, centre, now, digits=""):
        key = (caller.number, caller.withheld, caller.restriction, caller.lookup_failed, digits)
        if key not in decisions:
            decisions[key] = real_decide(caller, centre, now, digits)
        return decisions[key]

    with app.app_context():
        connect = next(d for d in decisions_of(services, today) if d.connects)
        twiml_text = voice.render_decision(services.settings, "CA" + "0" * 32, connect)
    sink = services.event_sink
    return {
        "signature check (signature_matches)": lambda st: st.enter_context(
            mock.patch.object(signature, "signature_matches", lambda *a, **k: True)),
        "form parse (parse_form)": lambda st: st.enter_context(
            mock.patch.object(signature, "parse_form", forms.__getitem__)),
        "register check + record, one round trip (emit_unless_listed)": lambda st: (
            st.enter_context(mock.patch.object(
                sink, "emit_unless_listed", lambda number, batch: listed[number]))),
        "decide()": lambda st: st.enter_context(
            mock.patch.object(incoming, "decide", remembered_decide)),
        "second round trip: listed and withheld callers (emit)": lambda st: st.enter_context(
            mock.patch.object(sink, "emit", lambda batch: True)),
        "TwiML rendering (render_decision)": lambda st: st.enter_context(
            mock.patch.object(incoming, "render_decision", lambda *a: twiml_text)),
    }


def ablation(app, services, calls: list[SignedCall], rounds: int = 11,
             per_run: int = 300) -> dict[str, dict]:
    """µs per request each part of the real path costs inside a whole request: the request with
    everything real, less the request with that part stubbed. Paired: every round measures the
    whole request before and after each stubbed run, and the figure is the median over rounds,
    since a shared VM's speed drifts by more than the smaller parts cost."""
    from contextlib import ExitStack

    parts = _stubs(app, services, calls)
    sample = calls[:per_run]
    all_stubbed = "what remains with all of them stubbed (WSGI handling, glue)"

    def measure(chosen) -> tuple[float, float]:
        environs = [_environ(c) for c in sample]
        gc.collect()
        with ExitStack() as stack:
            for apply in chosen:
                apply(stack)
            timing = _through_wsgi(app, environs)
        clear_call_state(services.redis)
        return timing

    _through_wsgi(app, [_environ(c) for c in sample])  # warm
    clear_call_state(services.redis)
    bases: list[tuple[float, float]] = []
    saved: dict[str, list[tuple[float, float]]] = {name: [] for name in [*parts, all_stubbed]}
    for _ in range(rounds):
        before = measure(())
        bases.append(before)
        for name in saved:
            stubbed = measure(parts.values() if name == all_stubbed else (parts[name],))
            after = measure(())
            base = ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
            saved[name].append(stubbed if name == all_stubbed else
                               (base[0] - stubbed[0], base[1] - stubbed[1]))
            before = after

    def median(pairs: list[tuple[float, float]]) -> dict[str, float]:
        return {"wall_us": round(statistics.median(p[0] for p in pairs), 1),
                "cpu_us": round(statistics.median(p[1] for p in pairs), 1)}

    return {"everything real": median(bases), **{name: median(v) for name, v in saved.items()}}


# (label, file suffix(es), function name(s)) of the call path, for the cProfile breakdown.
PROFILE_FUNCTIONS = (
    ("whole request (IncomingCalls)", "webhooks/incoming.py", "__call__"),
    ("  signature check", "webhooks/signature.py", "signature_matches"),
    ("  form parse (parse_form)", "webhooks/signature.py", "parse_form"),
    ("    answer_incoming()", "webhooks/incoming.py", "answer_incoming"),
    ("      decide()", "callflow/decision.py", "decide"),
    ("      _effects()", "webhooks/incoming.py", "_effects"),
    ("      register check + record (emit_unless_listed)", "store/call_events.py",
     "emit_unless_listed"),
    ("      restriction from the cached value", "store/lookup.py", "answer"),
    ("      second round trip (emit)", "store/call_events.py", "emit"),
    ("        Batch.encode (JSON)", "store/call_events.py", "encode"),
    ("        Redis script calls (EVALSHA)", "redis/commands/core.py", "__call__"),
    ("      render_decision(): TwiML", "webhooks/voice.py", "render_decision"),
)


def profile_path(env: dict[str, str], callers: list[tuple[str, str]], count: int,
                 tree: bool, rounds: int = 11) -> dict:
    """Time the real path in-process: end to end through WSGI, by cProfile, and by component."""
    import cProfile
    import pstats

    from twilio.request_validator import RequestValidator

    from bench.ceiling_app import create_app as create_ceiling
    from callflow.decision import Caller, decide
    from callflow.phone import caller_key, normalise
    from config import clock
    from config.centre import centre_for
    from config.settings import load_settings
    from service.app import create_app
    from store.call_events import Batch
    from store.routing_cache import CACHE_KEY
    from usecases.bootstrap import Services
    from webhooks.incoming import _effects
    from webhooks.signature import parse_form, signature_matches
    from webhooks.voice import render_decision

    services = Services(load_settings(env))
    app = create_app(services=services)
    ceiling = create_ceiling()
    calls = sign_calls(callers[:count], run_id=0x7F000000 + os.getpid() % 0xFFFF)
    out: dict[str, object] = {"requests": len(calls)}

    # End to end through WSGI: the real path against the ceiling app, same environs.
    _through_wsgi(app, [_environ(c) for c in calls[:500]])  # warm: imports, pools, caches
    real_wall, real_cpu = _through_wsgi(app, [_environ(c) for c in calls])
    ceiling_wall, ceiling_cpu = _through_wsgi(ceiling, [_environ(c) for c in calls])
    clear_call_state(services.redis)
    # The real app's floor: routing, the console's before/after hooks and the session, on a
    # view that does nothing (GET /healthz), against the ceiling's whole request.
    health = _environ_get("/healthz")
    floor_wall, floor_cpu = _through_wsgi(app, [health() for _ in calls])
    out["wsgi_us_per_request"] = {
        "real_app_healthz_wall": round(floor_wall, 1), "real_app_healthz_cpu": round(floor_cpu, 1),
        "real_wall": round(real_wall, 1), "real_cpu": round(real_cpu, 1),
        "ceiling_wall": round(ceiling_wall, 1), "ceiling_cpu": round(ceiling_cpu, 1),
    }

    # cProfile: where the real path's time goes (inflates Python-heavy code; read as shares).
    profiler = cProfile.Profile()
    environs = [_environ(c) for c in calls]
    profiler.enable()
    _through_wsgi(app, environs)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = None
    breakdown = []
    for label, suffix, name in PROFILE_FUNCTIONS:
        suffixes = (suffix,) if isinstance(suffix, str) else suffix
        names = (name,) if isinstance(name, str) else name
        cumulative = sum(v[3] for (path, _, fn), v in stats.items()
                         if fn in names and path.endswith(suffixes))
        if total is None:
            total = cumulative
        breakdown.append({"part": label, "share": round(cumulative / total, 3) if total else 0})
    out["cprofile_shares"] = breakdown
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:15]
    out["cprofile_top_self"] = [
        {"function": f"{Path(path).name}:{line}:{fn}", "self_share": round(v[2] / total, 3),
         "calls_per_request": round(v[1] / len(calls), 2)}
        for (path, line, fn), v in top
    ]
    clear_call_state(services.redis)

    if tree:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0002)
        environs = [_environ(c) for c in calls]
        sampler.start()
        _through_wsgi(app, environs)
        sampler.stop()
        print(sampler.output_text(unicode=False, color=False, show_all=False))
        clear_call_state(services.redis)

    if rounds:
        out["ablation_us"] = ablation(app, services, calls, rounds)
    clear_call_state(services.redis)

    # Components on their own, with the same inputs the requests carry.
    settings = services.settings
    url = BASE_URL + PATH
    validator = RequestValidator(TOKEN)
    forms = [parse_form(c.body)[0] for c in calls]
    pairs = list(zip(forms, [c.signature for c in calls], strict=True))
    numbers = [number for kind, number in callers[:count] if kind != "withheld"]
    now = clock.now_utc()
    centre = centre_for(settings, now.year)
    cache = services.routing_cache
    hits = [n for n in numbers if cache.client.hexists(CACHE_KEY, n)]
    decoded_hits = [cache.fetch(n)[1] for n in hits[:200]]
    components: dict[str, dict[str, float]] = {}
    components["signature: the app's check (signature_matches)"] = _per_call(
        lambda p: signature_matches(TOKEN, url, p[0], p[1]), pairs)
    components["signature: twilio's validate() (2 HMACs + urlparse)"] = _per_call(
        lambda p: validator.validate(url, dict(p[0]), p[1]), pairs)
    components["form parse: parse_form()"] = _per_call(lambda c: parse_form(c.body), calls)
    components["phonenumbers: normalise()"] = _per_call(normalise, numbers[:2000],
                                                                      repeats=2)
    for n in numbers:
        caller_key(n)
    components["caller_key() lru hit"] = _per_call(caller_key, numbers)
    components["Redis: cache fetch, a hit (HMGET + decode)"] = _per_call(cache.fetch, hits[:2000])
    components["Redis: cache fetch, a miss (HMGET)"] = _per_call(
        cache.fetch, [n for n in numbers if n not in set(hits)][:2000])
    components["centre_for() (lru keyed on Settings)"] = _per_call(
        lambda _: centre_for(settings, now.year), range(5000))
    plain = Caller(call_sid="CA" + "0" * 32, number="+441134900000")
    components["decide(): not on the register"] = _per_call(
        lambda _: decide(plain, centre, now), range(5000))
    restricted = [Caller(call_sid="CA" + "0" * 32, number="+441134900000", restriction=r)
                  for r in decoded_hits if r is not None]
    if restricted:
        components["decide(): on the register (mixed arrangements)"] = _per_call(
            lambda c: decide(c, centre, now), restricted)
    decision = decide(plain, centre, now)
    sid = "CA" + "1" * 32
    live = {"state": "waiting", "outcome": "centre", "from": "+441134900000", "withheld": "0",
            "lookup_failed": "0", "entry_id": "", "started": now.isoformat(),
            "fallback_staff_id": ""}
    components["TwiML: render_decision() conference"] = _per_call(
        lambda _: render_decision(settings, sid, decision), range(3000))
    effects = _effects(services, sid, decision)
    batch = Batch(sid, decision.events, effects, live)
    components["events: Batch.encode() (JSON)"] = _per_call(lambda b: b.encode(), [batch] * 3000)
    sink = services.event_sink
    components["Redis: emit(), the writes' round trip"] = _per_call(sink.emit, [batch] * 2000)
    misses = [n for n in numbers if n not in set(hits)][:2000]
    components["Redis: emit_unless_listed(), a caller not on the register"] = _per_call(
        lambda n: sink.emit_unless_listed(n, batch), misses)
    clear_call_state(services.redis)
    out["components_us"] = components
    services.engine.dispose()
    return out


# --- the run ------------------------------------------------------------------------------------

def server_env(database_url: str, redis_url: str, var_dir: Path) -> dict[str, str]:
    """The environment both apps run with."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CALLFLOW_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "CALLFLOW_ENV": "test",
        "CALLFLOW_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-secret-key",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "PUBLIC_BASE_URL": BASE_URL,
        "CALLFLOW_OPENING_HOURS": OPENING_HOURS,
        "PYTHONPATH": str(ROOT),
    })
    return env


class Database:
    """SQLite in a temporary directory, or a fresh schema on a given PostgreSQL."""

    def __init__(self, url: str | None, work_dir: Path):
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        from store.db import make_engine

        self.schema = None
        self.admin = None
        if not url:
            self.url = f"sqlite:///{work_dir / 'callflow.db'}"
            return
        if make_url(url).get_backend_name() != "postgresql":
            raise SystemExit("--database-url: PostgreSQL only (SQLite is the default)")
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        self.admin = make_engine(url)
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        scoped = make_url(self.admin.url).update_query_dict(
            {"options": f"-csearch_path={self.schema}"})
        self.url = scoped.render_as_string(hide_password=False)

    def describe(self) -> str:
        """Where the register lives, without a password."""
        from sqlalchemy.engine import make_url

        return "sqlite (temporary file)" if self.schema is None else (
            make_url(self.url).render_as_string(hide_password=True))

    def drop(self) -> None:
        """Drop the benchmark's PostgreSQL schema."""
        if self.admin is not None:
            from sqlalchemy import text

            with self.admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self.admin.dispose()


def versions() -> dict[str, str]:
    """Versions of what the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("gunicorn", "flask", "werkzeug", "redis", "hiredis", "twilio", "phonenumbers",
                 "sqlalchemy", "rq", "uvloop"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def run(entries: int, args) -> dict:
    """Prepare, load, measure and profile one register size; returns the results."""
    import redis as redis_py

    from config.settings import load_settings
    from store.db import make_engine
    from usecases.bootstrap import Services

    work_dir = Path(tempfile.mkdtemp(prefix="callflow-bench-"))
    database = Database(args.database_url, work_dir)
    redis_url = args.redis_url
    env = server_env(database.url, redis_url, work_dir / "var")
    client = redis_py.Redis.from_url(redis_url)
    client.flushdb()
    result: dict[str, object] = {
        "entries": entries, "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.incoming_calls",
                             *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(), "database": database.describe(),
        "redis": redis_py.Redis.from_url(redis_url).connection_pool.connection_kwargs.get(
            "db", 0),
        "settings": {"CALLFLOW_OPENING_HOURS": OPENING_HOURS, "CALLFLOW_ENV": "test",
                     "PUBLIC_BASE_URL": BASE_URL},
    }
    generator = None
    try:
        settings = load_settings(env)
        now = datetime.now(UTC)
        today = now.astimezone(settings.tz).date()
        print(f"\n== {entries:,} register entries: loading ({database.describe()})", flush=True)
        engine = make_engine(database.url)
        register = load_register(engine, entries, today, now, args.seed)
        engine.dispose()
        services = Services(settings)
        started = time.perf_counter()
        register.cached_numbers = services.register.rebuild_cache(today)
        register.cache_seconds = time.perf_counter() - started
        services.engine.dispose()
        print(f"   loaded {register.entries:,} entries / {register.phones:,} numbers in "
              f"{register.load_seconds:.1f} s; routing cache of {register.cached_numbers:,} "
              f"numbers rebuilt in {register.cache_seconds:.1f} s", flush=True)
        result["register"] = register.__dict__

        callers = draw_callers(args.pool, register.phones, args.mix, args.seed)
        result["callers"] = dict(Counter(kind for kind, _ in callers))
        result["pool"] = len(callers)
        if args.profile_only:
            result["profile"] = profile_path(env, callers, args.profile, args.pyinstrument,
                                             args.ablation_rounds)
            return result
        probe = http_request(sign_calls([("probe", "+441134900000")], run_id=0xFFFFFFFF)[0])
        generator = GeneratorProcess(callers, args.seed, args.loop, args.timeout)
        result["generator"] = {**generator.info, "concurrency": args.concurrency,
                               "timeout_seconds": args.timeout}
        print(f"   signed {generator.info['signed']:,} requests in "
              f"{generator.info['signing_seconds']:.1f} s; generator loop "
              f"{generator.info['loop']}", flush=True)

        if args.workers == "auto" or "," in args.workers:
            candidates = [2, 3, 4] if args.workers == "auto" else _int_list(args.workers)
            print("   choosing the worker count (saturation, "
                  f"{args.search_duration:g} s each):", flush=True)
            table = search_workers(candidates, env, work_dir, probe, client, generator, args)
            result["worker_search"] = table
            workers = max(table, key=lambda row: (row["real"], -row["workers"]))["workers"]
        else:
            workers = int(args.workers)
        result["workers"] = workers
        print(f"   measuring with {workers} sync workers", flush=True)

        before = redis_counters(client)
        targets = start_both(workers, env, work_dir, probe, client, generator)
        result["gunicorn"] = targets[0].server.command
        try:
            result.update(measure(targets, generator, args))
        finally:
            for target in targets:
                target.server.stop()
        after = redis_counters(client)
        clear_call_state(client)
        result["ratio"] = round(result["real"]["saturation"]["ok_per_second"]
                                / result["ceiling"]["saturation"]["ok_per_second"], 3)
        result["cpu_ratio"] = round(result["ceiling"]["saturation"]["service_cpu_us_per_request"]
                                    / result["real"]["saturation"]["service_cpu_us_per_request"],
                                    3)
        phases = [result["real"]["saturation"], *result["real"]["rates"].values()]
        measured = sum(p["ok"] + p["error_count"] for p in phases)
        new = sum(p["redis_new_connections"] for p in phases)
        ours = sum(p["redis_db_connections_new"] for p in phases)
        result["redis_connections"] = {
            # Server-wide: on a shared Redis this counts other people's connections too.
            "new_during_measured_phases": new, "requests": measured,
            "new_on_bench_db_during_measured_phases": ours,
            "per_request_on_bench_db": round(ours / max(1, measured), 6),
            "open_on_bench_db": phases[-1]["redis_db_connections"],
            "per_request_server_wide": round(new / max(1, measured), 6),
            # Each worker's first request opens its pooled connection; the bench adds none.
            "new_including_start_and_warm_up": (after["total_connections_received"]
                                                - before["total_connections_received"]),
            "workers": workers,
        }
        generator.close()
        generator = None
        if args.profile:
            print(f"   profiling {args.profile:,} in-process requests", flush=True)
            try:
                result["profile"] = profile_path(env, callers, args.profile, args.pyinstrument,
                                                 args.ablation_rounds)
            except Exception as error:  # keep the load figures whatever the profile does
                print(f"   profile failed: {error!r}", flush=True)
                result["profile_error"] = repr(error)
    finally:
        if generator is not None:
            generator.close()
        database.drop()
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    return result


# --- reporting ----------------------------------------------------------------------------------

def _ms(phase: dict, key: str) -> str:
    value = phase["latency_ms"].get(key)
    return "-" if value is None else f"{value:.2f}"


def report(result: dict) -> str:
    """The figures of one register size as a text table."""
    if "real" not in result:
        return profile_report(result["profile"])
    lines = [
        f"entries {result['entries']:,}: {result['workers']} sync workers, "
        f"{result['generator']['loop']} generator, {result['generator']['concurrency']} in flight"
        " at saturation",
        f"{'':27}{'ceiling':>16}{'real':>16}",
    ]
    ceiling, real = result["ceiling"], result["real"]
    lines.append(f"{'saturation, answers/s':27}{ceiling['saturation']['ok_per_second']:>16,.0f}"
                 f"{real['saturation']['ok_per_second']:>16,.0f}   ratio {result['ratio']:.0%}")
    lines.append(f"{'  workers CPU µs/request':27}"
                 f"{ceiling['saturation']['server_cpu_us_per_request']:>16,.0f}"
                 f"{real['saturation']['server_cpu_us_per_request']:>16,.0f}")
    lines.append(f"{'  + master + Redis':27}"
                 f"{ceiling['saturation']['service_cpu_us_per_request']:>16,.0f}"
                 f"{real['saturation']['service_cpu_us_per_request']:>16,.0f}"
                 f"   CPU ratio {result['cpu_ratio']:.0%}")
    for label, key, form in (("  generator CPU, cores", "generator_cpu_share", ".2f"),
                             ("  Redis CPU, cores", "redis_cpu_share", ".2f"),
                             ("  other processes, cores", "other_processes_cores", ".2f")):
        lines.append(f"{label:27}{ceiling['saturation'][key]:>16{form}}"
                     f"{real['saturation'][key]:>16{form}}")
    for rate in real["rates"]:
        c, r = ceiling["rates"][rate], real["rates"][rate]
        lines.append(f"{f'{rate}/s: p50 / p99 ms':27}{_ms(c, 'p50'):>8} /{_ms(c, 'p99'):>6}"
                     f"{_ms(r, 'p50'):>8} /{_ms(r, 'p99'):>6}   "
                     f"achieved {r['sent_per_second']:,.0f}/s, errors {r['error_count']}, "
                     f"lag p99 {r['lag_ms'].get('p99', 0):.2f} ms, others "
                     f"{c['other_processes_cores']:.2f}/{r['other_processes_cores']:.2f} cores")
    connections = result["redis_connections"]
    lines.append(f"Redis connections: {connections['new_during_measured_phases']} new (server-wide)"
                 f", {connections['new_on_bench_db_during_measured_phases']} new on the bench db "
                 f"({connections['open_on_bench_db']} open) over "
                 f"{connections['requests']:,} measured requests "
                 f"({connections['per_request_on_bench_db']:.4f}/request on the bench db; "
                 f"{connections['new_including_start_and_warm_up']} including start-up, "
                 f"{connections['workers']} workers)")
    errors = sum(p["error_count"] for side in (ceiling, real)
                 for p in (side["saturation"], *side["rates"].values()))
    lines.append(f"errors or timeouts, all phases: {errors}; real answers at saturation: "
                 f"{real['saturation']['answers']}")
    if "profile" in result:
        lines.append(profile_report(result["profile"]))
    return "\n".join(lines)


def profile_report(profile: dict) -> str:
    """The profile of the real path as text."""
    lines = []
    if profile:
        wsgi = profile["wsgi_us_per_request"]
        lines.append(f"in-process WSGI µs/request, wall (CPU): real {wsgi['real_wall']} "
                     f"({wsgi['real_cpu']}), ceiling {wsgi['ceiling_wall']} "
                     f"({wsgi['ceiling_cpu']}), real app's GET /healthz "
                     f"{wsgi['real_app_healthz_wall']} ({wsgi['real_app_healthz_cpu']})")
        for part in profile["cprofile_shares"]:
            lines.append(f"  {part['part']:45}{part['share']:>7.1%}")
        lines.append(f"in a whole request, µs saved by stubbing each part: {'wall':>8}{'CPU':>9}")
        for name, micros in profile.get("ablation_us", {}).items():
            lines.append(f"  {name:58}{micros['wall_us']:>8.1f}{micros['cpu_us']:>9.1f}")
        lines.append(f"components on their own, µs per call: {'wall':>17}{'CPU':>9}")
        for name, micros in profile["components_us"].items():
            lines.append(f"  {name:55}{micros['wall_us']:>9.2f}{micros['cpu_us']:>9.2f}")
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    """One line per register size: the figures the issue asks for."""
    rates = list(results[0]["real"]["rates"])
    head = (f"{'entries':>10} {'w':>2} {'ceiling/s':>10} {'real/s':>8} {'ratio':>6} "
            f"{'cpu-ratio':>9} "
            + " ".join(f"{f'p50/p99 @{r}':>16}" for r in rates)
            + f" {'conn/req':>9} {'others':>7}")
    lines = [head]
    for result in results:
        real = result["real"]
        cells = " ".join(
            f"{_ms(real['rates'][r], 'p50'):>7} /{_ms(real['rates'][r], 'p99'):>7}"
            for r in rates)
        phases = [real["saturation"], *real["rates"].values()]
        others = statistics.fmean(p["other_processes_cores"] for p in phases)
        lines.append(
            f"{result['entries']:>10,} {result['workers']:>2} "
            f"{result['ceiling']['saturation']['ok_per_second']:>10,.0f} "
            f"{real['saturation']['ok_per_second']:>8,.0f} {result['ratio']:>6.0%} "
            f"{result['cpu_ratio']:>9.0%} {cells} "
            f"{result['redis_connections']['per_request_on_bench_db']:>9.4f} {others:>7.2f}")
    lines.append("others: mean cores used by other processes on the machine during the real "
                 "path's phases (2 cores in all)")
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.incoming_calls",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=_int_list, default=[100_000],
                        help="register sizes, comma-separated (default 100000)")
    parser.add_argument("--rates", type=_int_list, default=[250, 500, 1000],
                        help="open-loop calls/s, comma-separated (default 250,500,1000)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds per measured phase (default 10)")
    parser.add_argument("--workers", default="auto",
                        help="gunicorn sync workers; 'auto' tries 2, 3 and 4 and keeps the "
                             "one with the best real-path throughput, as does a list such as "
                             "2,4,6 (default auto)")
    parser.add_argument("--search-duration", type=float, default=5.0,
                        help="seconds per saturation run when choosing workers (default 5)")
    parser.add_argument("--slices", type=int, default=5,
                        help="saturation alternates the apps in this many slices (default 5)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="requests in flight at saturation (default 32)")
    parser.add_argument("--pool", type=int, default=60_000,
                        help="distinct signed calls to cycle through (default 60000)")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix("40,50,10"),
                        help="callers on the register, not on it, withheld (default 40,50,10)")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds before a request counts as timed out (default 2)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                        help="PostgreSQL to load into (a fresh schema, dropped afterwards); "
                             "default SQLite in a temporary directory")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
                        help=f"Redis to use and FLUSH (default REDIS_URL or {DEFAULT_REDIS_URL})")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="the generator's event loop (default uvloop when installed)")
    parser.add_argument("--profile", type=int, default=5000,
                        help="in-process requests to profile afterwards; 0 skips (default 5000)")
    parser.add_argument("--ablation-rounds", type=int, default=11,
                        help="rounds of the stub-one-part-at-a-time profile; 0 skips (default 11)")
    parser.add_argument("--profile-only", action="store_true",
                        help="load the register and profile in-process; no servers, no load")
    parser.add_argument("--pyinstrument", action="store_true",
                        help="also print a pyinstrument call tree of the profiled requests")
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="before each phase, wait up to this many seconds for the machine "
                             "to be idle (it may be shared); 0 skips (default 30)")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--no-write", action="store_true",
                        help="do not write bench/results/incoming_calls-<entries>.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark for each register size, print the figures and write them as JSON."""
    args = parse_args(argv)
    results = []
    for entries in args.entries:
        result = run(entries, args)
        print(report(result), flush=True)
        if not args.no_write:
            RESULTS_DIR.mkdir(exist_ok=True)
            path = RESULTS_DIR / f"incoming_calls-{entries}.json"
            if args.profile_only and path.exists():
                # Keep the load figures; replace only the profile.
                kept = json.loads(path.read_text())
                kept["profile"] = result["profile"]
                kept["profile_when"] = result["when"]
                result = kept
            path.write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {path.relative_to(ROOT)}", flush=True)
        results.append(result)
    if not args.profile_only:
        print("\n" + summary_table(results))


if __name__ == "__main__":
    main()
