"""One Twilio REST client is shared by a process's threads (gunicorn's gthread workers, and a
worker's effects for several calls side by side): each thread must get the answer to its own
request, or a dial's leg SID could go to the wrong caller.

twilio's own TwilioHttpClient keeps the last response on the client and returns it from there
(twilio/twilio-python#580); BaseUrlHttpClient sends its requests itself and keeps each answer
with its thread. (The window in twilio's code is too narrow for CPython to show in a test; this
holds the property that concurrent effects rely on.) The server here is not Twilio: Prism
answers every request alike, which could not show a swap, so it echoes each request's path."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from store.twilio_rest import BaseUrlHttpClient

REQUESTS = 600


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the http.server's name)
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Switch threads as often as Python allows."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_each_thread_gets_the_answer_to_its_own_request(echo_url, eager_thread_switches):
    client = BaseUrlHttpClient(echo_url)

    def answer_to(n: int) -> tuple[str, str]:
        path = f"/2010-04-01/Accounts/AC1/Calls/CA{n:032d}.json"
        response = client.request("GET", f"https://api.twilio.com{path}")
        assert client.last_response() is response
        return path, json.loads(response.text)["path"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(answer_to, range(REQUESTS)))
    assert [(asked, answered) for asked, answered in answers if asked != answered] == []


def test_the_client_does_not_answer_from_state_it_shares_between_threads(echo_url):
    client = BaseUrlHttpClient(echo_url)
    response = client.request("GET", "https://api.twilio.com/2010-04-01/Accounts/AC1.json")
    # twilio's request() stores its answer here and returns it from here: nothing reads it now.
    assert client._test_only_last_response is None
    assert json.loads(response.text) == {"path": "/2010-04-01/Accounts/AC1.json"}
