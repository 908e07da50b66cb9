"""30 simultaneous wrong passwords for one account, while 150 signed incoming calls arrive at
50 a second, against the web server as the runner starts it (gunicorn, 2 gthread workers),
warmed up first.

Counts calls not answered with TwiML or answered after more than 1 s, password checks beyond the
limit of 10 (each 401 is one check; the rest must be 429), and 429s without Retry-After.
"""

from __future__ import annotations

import http.client
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from bench.faults import Row
from bench.faults.item_03_redis_hung import answered_well, settings_env, start_web
from config.settings import load_settings
from console.security import EMAIL_REFUSE_AFTER
from store.db import transaction
from tests.faults.processes import LOOPBACK, RedisServer, post_signed
from usecases.bootstrap import Services
from usecases.staff import add_staff

GUESSES = 30
CALLS = 150
RATE = 50
SLOW_SECONDS = 1.0
WARM_UP = 20
ACCOUNT = "agent@example.org"


def _seed(env: dict[str, str]) -> None:
    services = Services(load_settings(env))
    try:
        with transaction(services.sessions) as session:
            add_staff(session, email=ACCOUNT, name="Agent", role="agent",
                      now=datetime.now(UTC),
                      password="the right password, not guessed", client_identity="agent")
    finally:
        services.close()


def _guess(port: int, n: int) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    try:
        connection.request("POST", "/signin", urlencode(
            {"email": ACCOUNT, "password": f"wrong guess {n}"}),
            {"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        connection.close()


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = RedisServer(workdir / "redis").start()
    env = settings_env(workdir, database_url, server.url)
    _seed(env)
    web, port = start_web(env, workdir)
    answers: list[tuple[int, str | None]] = []
    latencies: list[float] = []
    unanswered = 0
    lock = threading.Lock()
    start = threading.Barrier(GUESSES + 1)

    def guess(n: int) -> None:
        start.wait()
        answer = _guess(port, n)
        with lock:
            answers.append(answer)

    try:
        for i in range(WARM_UP):  # a running service is warm: both workers have taken calls
            post_signed(port, "/twilio/voice/incoming", {
                "CallSid": f"CA{i:016x}{'f' * 16}", "From": f"+4477008{i:05d}",
                "To": "+441632960000", "CallStatus": "ringing"}, env)
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
        for thread in threads:
            thread.start()
        start.wait()
        began = time.monotonic()
        for i in range(CALLS):
            time.sleep(max(0.0, began + i / RATE - time.monotonic()))
            params = {"CallSid": f"CA{i:032x}", "From": f"+4477009{i:05d}",
                      "To": "+441632960000", "CallStatus": "ringing"}
            sent = time.monotonic()
            try:
                status, body = post_signed(port, "/twilio/voice/incoming", params, env)
                unanswered += not answered_well("/incoming", status, body)
            except (OSError, ET.ParseError):
                unanswered += 1
            latencies.append(time.monotonic() - sent)
        for thread in threads:
            thread.join(120)
    finally:
        web.stop()
        server.stop()
    checks = sum(status == 401 for status, _ in answers)
    refused = [retry for status, retry in answers if status == 429]
    slow_calls = [i for i, latency in enumerate(latencies) if latency > SLOW_SECONDS]
    slow = len(slow_calls)
    over_limit = max(0, checks - EMAIL_REFUSE_AFTER)
    no_retry = sum(not retry for retry in refused)
    other = GUESSES - checks - len(refused)
    return Row(8, f"{GUESSES} simultaneous wrong sign-ins, {CALLS} calls at {RATE}/s",
               GUESSES + CALLS, unanswered + slow + over_limit + no_retry + other,
               f"every call answered within {SLOW_SECONDS:.0f} s; at most {EMAIL_REFUSE_AFTER} "
               "password checks; 429s carry Retry-After",
               f"password checks {checks}, refused {len(refused)}; slowest call "
               f"{max(latencies):.2f} s, calls over {SLOW_SECONDS:.0f} s: {slow} "
               f"(numbers {slow_calls})")
