"""The workspace's browser fixtures: its own live server and Chromium, beside the console's.

The app is served by a threaded werkzeug server on a free loopback port, built on the test's
own database and Redis with PUBLIC_BASE_URL pointed at that port. Chromium is Debian's
(/usr/bin/chromium); without it the tests skip, unless CI is set, when they fail.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from service.app import create_app
from tests.support.in_flight import InFlight
from usecases.bootstrap import Services

SCREENSHOTS = os.environ.get("CALLFLOW_SCREENSHOTS", "")


def _starting(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@dataclass
class WorkspaceServer:
    """The app on a live address, and the services behind it."""

    url: str
    services: Services
    server: BaseWSGIServer
    thread: threading.Thread = field(init=False)
    in_flight: InFlight = field(init=False)

    def __post_init__(self) -> None:
        self.in_flight = InFlight(create_app(services=self.services))
        self.server.app = self.in_flight
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True,
                                       name="workspace-live-server")
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.in_flight.wait_until_idle()
        self.server.server_close()
        self.services.engine.dispose()


@pytest.fixture
def workspace_server(services, staff, clock, more_services) -> Iterator[WorkspaceServer]:
    """The whole web app served on 127.0.0.1, on the test's database and Redis, time frozen."""
    server = make_server("127.0.0.1", 0, _starting, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    live = more_services(services.settings.with_overrides(public_base_url=url))
    running = WorkspaceServer(url, live, server)
    yield running
    running.stop()


@dataclass
class Browsing:
    """Pages opened in fresh contexts, and every browser-side error they logged."""

    browser: object
    errors: list[str] = field(default_factory=list)
    contexts: list = field(default_factory=list)

    def open(self, width: int = 1280, height: int = 900):
        """A page in a new context: its own cookies, so one person per context."""
        context = self.browser.new_context(viewport={"width": width, "height": height},
                                           accept_downloads=True)
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        return page

    def _console(self, message) -> None:
        # A CSP violation (an inline script or style) is reported here as an error; a form
        # answered 422 with its field messages is not one.
        if message.type != "error" or "status of 422" in message.text:
            return
        self.errors.append(message.text)

    def close(self) -> None:
        """Close every context opened."""
        for context in self.contexts:
            context.close()


@pytest.fixture
def workspace_pages(browser) -> Iterator[Callable[..., object]]:
    """Open pages; at the end, fail if any logged a browser error (CSP violations included)."""
    browsing = Browsing(browser)
    yield browsing.open
    browsing.close()
    assert not browsing.errors, "browser errors:\n" + "\n".join(browsing.errors)


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot when CALLFLOW_SCREENSHOTS names a folder."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"workspace-{name}.png"), full_page=True)
