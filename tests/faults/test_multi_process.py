"""Several of each process on one database and one Redis: two web servers, two pumps and two
workers share the work, and every event lands in the call log once and every job runs once.

With Redis down, a web process keeps what it acknowledged in the database; killing that process
loses none of it: once Redis is back a pump replays it into the call log.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select

from store.call_events import STREAM_KEY
from store.db import make_engine
from store.models import Call, CallEvent, DeadLetter, SpooledBatch
from tests.faults.processes import (
    LOOPBACK,
    ServiceProcess,
    free_port,
    get_json,
    post_signed,
    service_env,
    wait_until,
)
from workers.pump import GROUP

CALLS = 40
STATUSES = (("ringing", 0), ("in-progress", 1), ("completed", 2))
# rq's line for a job of its own, and run_effects' for each effect in a shared job (whose own
# id, effects-..., is not an effect's).
JOB_OK = re.compile(r"(?:Job|Effect) OK \((?!effects-)([\w-]+)\)")


def call_sids(count: int) -> list[str]:
    """Well-formed CallSids no other test uses (the database is shared by the session)."""
    prefix = secrets.token_hex(8)
    return [f"CA{prefix}{n:016x}" for n in range(count)]


def incoming(sid: str, n: int) -> dict[str, str]:
    """Twilio's incoming-call parameters for the n-th fictional caller (Ofcom's drama range)."""
    return {"CallSid": sid, "From": f"+44770090{n % 10000:04d}", "To": "+441632960000",
            "CallStatus": "ringing", "Direction": "inbound"}


def status(sid: str, name: str, sequence: int) -> dict[str, str]:
    """A status callback as Twilio sends it."""
    return {"CallSid": sid, "CallStatus": name, "SequenceNumber": str(sequence),
            "CallDuration": "30" if name == "completed" else "",
            "Timestamp": f"Tue, 01 Dec 2026 10:00:{sequence:02d} +0000"}


class Web:
    """One gunicorn, as `callflow run` starts it, on a loopback port of its own."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str):
        self.port = free_port()
        self.process = ServiceProcess(
            [sys.executable, "-m", "gunicorn", "service.wsgi:app", "--config",
             "python:service.gunicorn_conf", "--bind", f"{LOOPBACK}:{self.port}",
             "--workers", "2"], env, log_dir / f"{name}.log")

    def start(self) -> Web:
        self.process.start()
        wait_until(lambda: get_json(self.port, "/healthz")[0] == 200
                   or not self.process.running(), 60, "a web server to answer",
                   log=self.process.log)
        assert self.process.running(), self.process.log()[-4000:]
        return self


@pytest.fixture
def engine(fault_env) -> Iterator[Engine]:
    built = make_engine(fault_env["DATABASE_URL"])
    yield built
    built.dispose()


@pytest.fixture
def started() -> Iterator[list[ServiceProcess]]:
    """Every process the test starts, stopped by its pid at the end whatever happened."""
    processes: list[ServiceProcess] = []
    yield processes
    for process in processes:
        process.stop(20)


def start_parts(env: dict[str, str], log_dir: Path, started: list[ServiceProcess],
                *names: str) -> list[ServiceProcess]:
    """Pumps and workers, each with a log of its own."""
    parts = []
    for n, name in enumerate(names):
        part = ServiceProcess.part(name, env, log_dir / f"{name}-{n}")
        started.append(part.start())
        parts.append(part)
    return parts


def post_call(web_in: Web, web_out: Web, env: dict[str, str], sid: str, n: int) -> list[int]:
    """A whole call: its incoming webhook to one web server, its callbacks (and Twilio's retry of
    the last) to the other. The answers' statuses."""
    answers = [post_signed(web_in.port, "/twilio/voice/incoming", incoming(sid, n), env)[0]]
    for name, sequence in STATUSES:
        answers.append(post_signed(web_out.port, "/twilio/voice/status",
                                   status(sid, name, sequence), env)[0])
    answers.append(post_signed(web_in.port, "/twilio/voice/status",
                               status(sid, "completed", 2), env)[0])
    return answers


def call_log(engine: Engine, sids: list[str]) -> tuple[dict[str, str | None], Counter]:
    """Each call's status, and how often each (call, event key) is in the call log."""
    with engine.connect() as connection:
        calls = dict(connection.execute(
            select(Call.call_sid, Call.status).where(Call.call_sid.in_(sids))).all())
        keys = Counter(connection.execute(
            select(CallEvent.call_sid, CallEvent.event_key)
            .where(CallEvent.call_sid.in_(sids))).all())
    return calls, keys


def all_completed(engine: Engine, sids: list[str]) -> bool:
    calls, _keys = call_log(engine, sids)
    return len(calls) == len(sids) and set(calls.values()) == {"completed"}


def dead_letters(engine: Engine, sids: list[str]) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count(DeadLetter.id))
                                 .where(DeadLetter.call_sid.in_(sids)))


def test_two_of_each_process_share_the_work_with_no_event_lost_or_doubled_and_each_job_once(
        fault_env, redis_server, engine, started, tmp_path):
    env = service_env(fault_env)
    logs = tmp_path / "logs"
    webs = [Web(env, logs, "web-a"), Web(env, logs, "web-b")]
    for web in webs:
        started.append(web.process)
        web.start()
    start_parts(env, logs, started, "pump", "pump", "worker", "worker")
    sids = call_sids(CALLS)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: post_call(webs[n % 2], webs[1 - n % 2], env,
                                                    sids[n], n), range(CALLS)))
    assert answers == [[200, 204, 204, 204, 204]] * CALLS

    wait_until(lambda: all_completed(engine, sids), 60, "every call in the call log")
    calls, keys = call_log(engine, sids)
    assert set(calls.values()) == {"completed"}
    assert set(keys.values()) == {1}, "each event once"
    per_call = Counter(sid for sid, _key in keys)
    assert len(set(per_call.values())) == 1, f"every call has the same events: {per_call}"
    for sid in sids:
        statuses = sorted(key.removeprefix(f"{sid}:") for s, key in keys if s == sid
                          and key.startswith(f"{sid}:status:"))
        assert statuses == ["status:completed:2", "status:in-progress:1", "status:ringing:0"]
    assert dead_letters(engine, sids) == 0

    client = redis.Redis.from_url(redis_server.url)
    try:
        wait_until(lambda: client.xlen(STREAM_KEY) == 0, 20, "the stream to be emptied")
        consumers = client.xinfo_consumers(STREAM_KEY, GROUP)
        # A pump joins the group with the first entry it reads, and one pump may read them all
        # when it keeps up alone (Redis adds no consumer for an empty read): what must hold is
        # that no entry is left pending with either.
        assert 1 <= len(consumers) <= 2
        assert [c["pending"] for c in consumers] == [0] * len(consumers)
        # Each call's jobs (its dispatch to an agent, its clean-up once it finished) ran once,
        # on one worker or the other.
        marks = {key.decode().removeprefix("callflow:effect:")
                 for key in client.scan_iter("callflow:effect:*")}
    finally:
        client.close()
    # (A call's bound on its wait is a delayed job: no scheduler runs here, so it stays put.)
    due = {f"{sid}-{key}" for sid in sids for key in ("dispatch-0", "finished")}
    assert due <= marks
    workers = [p for p in started if "worker" in p.log_path.name]
    wait_until(lambda: due <= {job for w in workers for job in JOB_OK.findall(w.log())}, 30,
               "every job to have run", log=lambda: workers[0].log()[-3000:])
    ran = Counter(job for w in workers for job in JOB_OK.findall(w.log()))
    assert {job: ran[job] for job in due} == dict.fromkeys(due, 1)
    assert set(ran) <= marks and set(ran.values()) == {1}, "no job ran twice"


def test_a_web_process_killed_while_redis_is_down_loses_nothing_it_acknowledged(
        fault_env, redis_server, engine, started, tmp_path):
    env = service_env({**fault_env, "CALLFLOW_EVENT_SPOOL": "database"})
    logs = tmp_path / "logs"
    webs = [Web(env, logs, "web-a"), Web(env, logs, "web-b")]
    for web in webs:
        started.append(web.process)
        web.start()
    start_parts(env, logs, started, "pump", "pump", "worker")
    sids = call_sids(CALLS // 2)

    redis_server.kill()
    answers = [post_call(webs[n % 2], webs[1 - n % 2], env, sid, n)
               for n, sid in enumerate(sids)]
    assert answers == [[200, 204, 204, 204, 204]] * len(sids)
    with engine.connect() as connection:
        kept = connection.scalar(select(func.count(SpooledBatch.id))
                                 .where(SpooledBatch.call_sid.in_(sids)))
    assert kept == 5 * len(sids), "every acknowledged webhook is kept in the database"
    spool = Path(fault_env["CALLFLOW_VAR_DIR"]) / "spool"
    assert not spool.exists() or list(spool.glob("*")) == [], "nothing on the local disk"

    # The host dies: SIGKILL to its whole process group, no chance to hand anything on.
    webs[0].process.kill()
    assert not webs[0].process.running()

    redis_server.start()  # an empty Redis, as after a crash without persistence
    wait_until(lambda: all_completed(engine, sids), 60, "every call in the call log",
               log=lambda: started[2].log())
    calls, keys = call_log(engine, sids)
    assert set(keys.values()) == {1}
    for sid in sids:
        assert sorted(key.removeprefix(f"{sid}:") for s, key in keys
                      if s == sid and key.startswith(f"{sid}:status:")) == [
            "status:completed:2", "status:in-progress:1", "status:ringing:0"]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count(SpooledBatch.id))
                                 .where(SpooledBatch.call_sid.in_(sids))) == 0
    assert dead_letters(engine, sids) == 0
