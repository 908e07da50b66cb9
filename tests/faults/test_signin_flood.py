"""Item 8: a flood of wrong sign-ins is refused at once, never slept on, and calls are answered.

The app runs under werkzeug's threaded server on a free loopback port, as real threads share it:
30 wrong passwords for one account arrive at the same moment while signed incoming calls keep
coming in.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bench.incoming_calls import call_params
from console import auth, security
from service.app import create_app
from tests.faults.processes import LOOPBACK

GUESSES = 30
CALLERS = 4
CALLS_EACH = 10
ACCOUNT = "alex@example.org"
INCOMING = "/twilio/voice/incoming"


@pytest.fixture
def served(services, staff, clock) -> Iterator[int]:
    """The app on werkzeug's threaded server; its port."""
    server = make_server(LOOPBACK, 0, create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def password_checks(monkeypatch) -> Counter:
    """Counts every password check the sign-in runs."""
    counted: Counter = Counter()
    lock = threading.Lock()
    real = auth.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        with lock:
            counted["checks"] += 1
        return real(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting)
    return counted


def _post(port: int, path: str, body: dict[str, str], headers: dict[str, str]
          ) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    try:
        connection.request("POST", path, urlencode(body), {
            "Content-Type": "application/x-www-form-urlencoded", **headers})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_simultaneous_wrong_sign_ins_run_at_most_the_limit_and_calls_are_answered(
        served, services, password_checks):
    start = threading.Barrier(GUESSES + CALLERS)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    calls: Counter = Counter()
    lock = threading.Lock()
    validator = RequestValidator(services.settings.twilio_auth_token)
    url = services.settings.public_base_url + INCOMING

    def guess(n: int) -> None:
        start.wait()
        answer = _post(served, "/signin", {"email": ACCOUNT, "password": f"wrong guess {n}"}, {})
        with lock:
            answers.append(answer)

    def call(caller: int) -> None:
        start.wait()
        for i in range(CALLS_EACH):
            params = call_params(f"CA{caller:08x}{i:024x}", f"+4477009{caller:02d}{i:03d}")
            status, headers, body = _post(served, INCOMING, params, {
                "X-Twilio-Signature": validator.compute_signature(url, params)})
            answered = status == 200 and headers.get("Content-Type", "").startswith("text/xml")
            with lock:
                calls["answered" if answered else "unanswered"] += 1

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
    threads += [threading.Thread(target=call, args=(c,)) for c in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    limit = security.EMAIL_REFUSE_AFTER
    statuses = Counter(status for status, _, _ in answers)
    assert password_checks["checks"] == limit
    assert statuses == {401: limit, 429: GUESSES - limit}
    refused = [(headers, body) for status, headers, body in answers if status == 429]
    assert all(0 < int(headers["Retry-After"]) <= security.THROTTLE_WINDOW_SECONDS
               for headers, _ in refused)
    assert all(b"Too many attempts. Try again in 15 minutes." in body for _, body in refused)
    assert calls == {"answered": CALLERS * CALLS_EACH}
