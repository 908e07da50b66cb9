"""One value the database cannot store never jams the call log (reliability item 1).

Signed webhooks go to the app in this process; the real `callflow pump` process moves their
events into the call log. One call in ten carries a value Twilio may legitimately send (a SIP
URI, a NUL byte, an absurd CallDuration) or is an entry the database refuses whatever the
cleaning; every ordinary call must still reach the log, and every poison one is stored cleaned
or set aside as a dead letter an admin can list, see in the workspace, and retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from callflow.decision import Event
from config.clock import local_today
from config.settings import load_settings
from service.app import create_app
from store.call_events import STREAM_KEY, Batch
from store.db import transaction
from store.models import Call, DeadLetter, Staff
from tests.faults.processes import ServiceProcess, service_env, wait_until
from tests.support.web_client import client_signed_in_as
from workers.context import use_services
from workers.pump import GROUP, pump_events

CALLS = 100
SIP_TO = "sip:reception@example.sip.twilio.com"  # 47 characters, as Twilio sends it
UNKNOWN_STAFF_ID = 987654


def sid(n: int) -> str:
    return f"CA{n:032x}"


@pytest.fixture
def web(fault_env, services, staff, more_services) -> Iterator:
    """Services on the test's own Redis, and a client for the app that serves the webhooks."""
    built = more_services(load_settings(fault_env))
    built.register.rebuild_cache(local_today(built.settings.tz))
    yield built, create_app(services=built).test_client()


class Twilio:
    """Posts webhooks signed the way Twilio signs them."""

    def __init__(self, client, env: dict[str, str]):
        self.client = client
        self.base = env["PUBLIC_BASE_URL"]
        self.validator = RequestValidator(env["TWILIO_AUTH_TOKEN"])

    def post(self, path: str, params: dict[str, str]) -> int:
        signature = self.validator.compute_signature(self.base + path, params)
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        return response.status_code

    def incoming(self, n: int, to: str = "+441632960000") -> int:
        return self.post("/twilio/voice/incoming", {
            "CallSid": sid(n), "From": f"+447700900{n % 1000:03d}", "To": to,
            "CallStatus": "ringing"})

    def completed(self, n: int, duration: str = "42") -> int:
        return self.post("/twilio/voice/status", {
            "CallSid": sid(n), "CallStatus": "completed", "CallDuration": duration,
            "SequenceNumber": "3"})


def send_calls(twilio: Twilio, s) -> dict[str, list[int]]:
    """CALLS calls, one in ten poison (five kinds in turn); returns the call numbers by kind."""
    kinds: dict[str, list[int]] = {"ordinary": [], "sip": [], "nul": [], "overflow": [],
                                   "unreadable": [], "unknown_staff": []}
    poisons = ["sip", "nul", "overflow", "unreadable", "unknown_staff"]
    for n in range(1, CALLS + 1):
        kind = poisons[(n // 10) % len(poisons)] if n % 10 == 5 else "ordinary"
        kinds[kind].append(n)
        if kind == "unreadable":  # not a batch as the service writes them: never recordable
            s.redis.xadd(STREAM_KEY, {"sid": sid(n), "events": "[{not json"})
            continue
        if kind == "unknown_staff":  # an agent missing from the staff table
            s.event_sink.emit(Batch(sid(n), (Event("connected", "connected:1",
                                                   datetime.now(UTC),
                                                   {"staff_id": UNKNOWN_STAFF_ID}),)))
            continue
        to = {"sip": SIP_TO, "nul": "+44163296\x000000"}.get(kind, "+441632960000")
        assert twilio.incoming(n, to) == 200
        assert twilio.completed(n, "99999999999" if kind == "overflow" else "42") == 204
    return kinds


def logged(s) -> dict[str, Call]:
    with s.sessions() as session:
        return {c.call_sid: c for c in session.scalars(select(Call))}


def run_cli(args: list[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    process = ServiceProcess.cli(args, env, log).start()
    status = process.process.wait(60)
    return status, process.log()


def test_one_poison_call_in_ten_never_holds_up_the_call_log(web, fault_env, tmp_path, staff):
    s, client = web
    env = service_env(fault_env)
    pump = ServiceProcess.part("pump", env, tmp_path / "logs").start()
    try:
        kinds = send_calls(Twilio(client, fault_env), s)
        wanted = {sid(n) for n in kinds["ordinary"]}
        wait_until(lambda: wanted <= logged(s).keys(), 30, "every ordinary call in the log")
        wait_until(lambda: s.redis.xlen(STREAM_KEY) == 0
                   and s.redis.xpending(STREAM_KEY, GROUP)["pending"] == 0,
                   30, "the stream drained")
    finally:
        pump.stop()
    calls = logged(s)
    assert len(kinds["ordinary"]) == 90
    assert [(calls[sid(n)].status, calls[sid(n)].duration_seconds)
            for n in kinds["ordinary"]] == [("completed", 42)] * 90
    assert {calls[sid(n)].to_number for n in kinds["sip"]} == {SIP_TO}
    assert {calls[sid(n)].to_number for n in kinds["nul"]} == {"+441632960000"}
    assert {(calls[sid(n)].status, calls[sid(n)].duration_seconds)
            for n in kinds["overflow"]} == {("completed", None)}
    with s.sessions() as session:
        letters = session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
    assert sorted(letter.call_sid for letter in letters) == sorted(
        sid(n) for n in kinds["unreadable"] + kinds["unknown_staff"])
    assert len(calls) == CALLS - len(letters)
    assert "+447700" not in pump.log() and "sip:" not in pump.log(), "no caller data in logs"

    status, listing = run_cli(["events", "dead-letters"], env, tmp_path / "list.log")
    assert status == 0
    assert sum(sid(n) in listing for n in kinds["unreadable"] + kinds["unknown_staff"]) == 4
    assert str(UNKNOWN_STAFF_ID) not in listing, "the error is listed without the values"

    with transaction(s.sessions) as session:  # the missing member of staff is put right
        session.add(Staff(id=UNKNOWN_STAFF_ID, email="late@example.org", name="Late",
                          role="agent", created_at=datetime.now(UTC)))
    status, retried = run_cli(["events", "retry", "--all"], env, tmp_path / "retry.log")
    assert (status, retried.strip().splitlines()[-1]) == (
        1, "2 recorded in the call log, 2 still refused")
    calls = logged(s)
    assert {calls[sid(n)].agent_id for n in kinds["unknown_staff"]} == {UNKNOWN_STAFF_ID}
    with s.sessions() as session:
        kept = session.execute(select(DeadLetter.call_sid, DeadLetter.attempts)).all()
    assert sorted(kept) == sorted((sid(n), 2) for n in kinds["unreadable"])


def test_the_workspace_lists_dead_letters_to_supervisors_in_plain_english(web, staff):
    s, client = web
    s.redis.xadd(STREAM_KEY, {"sid": sid(1), "events": "[{not json"})
    use_services(s)
    try:
        pump_events()
    finally:
        use_services(None)
    with s.sessions() as session:
        assert session.scalar(select(func.count(DeadLetter.id))) == 1
    page = client.get("/workspace/dead-letters")
    assert (page.status_code, page.headers["Location"]) == (
        303, "/signin?next=%2Fworkspace%2Fdead-letters"), "signed out: sent to sign in"
    agent = client_signed_in_as(create_app(services=s), "alex@example.org")
    assert agent.get("/workspace/dead-letters").status_code == 403
    supervisor = client_signed_in_as(create_app(services=s), "supervisor@example.org")
    page = supervisor.get("/workspace/dead-letters")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<caption>1 call event waiting</caption>" in text
    assert "It could not be read: it is not a call event as the service writes them." in text
    assert "JSONDecodeError" not in text and "not json" not in text
