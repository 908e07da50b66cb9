"""Browser tests: the real app on a live local server, real RQ workers, headless Chromium.

The app is served by werkzeug on 127.0.0.1 (a free port) with PUBLIC_BASE_URL set to it, so
the phone simulator's signed webhooks and the workers' REST requests (TWILIO_API_BASE_URL,
pointed at the simulator's fake Twilio API) travel over real HTTP. An RQ worker drains the
queue on a background thread. Chromium is Debian's (/usr/bin/chromium), driven by Playwright;
without it the tests fail, unless SKIP_BROWSER=1 asks them to skip.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from callflow.register import parse_entry
from config.settings import DEV_TWILIO_AUTH_TOKEN
from service.app import create_app
from store.models import CallEvent
from tests.conftest import NOW, TEST_PASSWORD, TODAY
from tests.support.in_flight import InFlight
from usecases.bootstrap import Services
from usecases.demo import demo_rows
from workers import pump
from workers.context import use_services

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WORKER_PAUSE_SECONDS = 0.05
SCREENSHOTS = os.environ.get("CALLFLOW_SCREENSHOTS", "")


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, launched once per module.

    Playwright's sync API allows one instance at a time in a process, so each module's browser
    closes before the next module's starts.
    """
    if not CHROMIUM.exists():
        message = (f"{CHROMIUM} is missing: install Debian's chromium package "
                   "(sudo apt-get install chromium) to run the browser tests")
        if os.environ.get("SKIP_BROWSER"):
            pytest.skip(f"{message} (SKIP_BROWSER is set)")
        pytest.fail(f"{message}, or set SKIP_BROWSER=1 to skip them")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for the page; on a loaded 2-core CI machine 5 s is too tight.
    expect.set_options(timeout=15_000)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., object]]:
    """Open a page in a fresh browser context (its own cookies: one person, one browser)."""
    contexts = []

    def open_page(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    """Save a screenshot when CALLFLOW_SCREENSHOTS names a folder (to look at the pages)."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


# -- the live server ---------------------------------------------------------------------------


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"the app is not mounted yet"]


@pytest.fixture
def live_socket() -> Iterator[BaseWSGIServer]:
    """A threaded werkzeug server bound to a free loopback port; the app is mounted later."""
    server = make_server("127.0.0.1", 0, _not_ready, threaded=True)
    yield server
    server.server_close()


@pytest.fixture
def settings(settings, request):
    """For tests on the live server: served at its address, no Twilio account (the simulator)."""
    if "live_server" not in request.fixturenames:
        return settings  # e.g. the workspace's tests, which build their own server
    base = f"http://127.0.0.1:{request.getfixturevalue('live_socket').server_port}"
    return settings.with_overrides(
        public_base_url=base,
        twilio_auth_token=DEV_TWILIO_AUTH_TOKEN,
        twilio_api_base_url=f"{base}/simulator/twilio",
        simulator_enabled=True,
    )


class LiveServer:
    """The app served on its own thread, and the address a browser opens."""

    def __init__(self, server: BaseWSGIServer, services: Services):
        self.server = server
        self.services = services
        self.url = services.settings.public_base_url
        self.in_flight = InFlight(create_app(services=services))
        server.app = self.in_flight
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.in_flight.wait_until_idle()


class ThreadWorker(SimpleWorker):
    """An RQ worker that runs jobs on a background thread (no signals: they need the main one)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


class BackgroundWorkers:
    """The pump and an RQ worker on threads, as `callflow pump` and `callflow worker` would run:
    call events are taken as they arrive and the queue is drained, due delayed jobs included."""

    def __init__(self, services: Services):
        self.services = services
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rq-worker", daemon=True)
        self.pump = threading.Thread(target=pump.run_pump, args=(self._stop,),
                                     kwargs={"block_ms": 200}, name="pump", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> BackgroundWorkers:
        use_services(self.services)
        self.pump.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(timeout=30)
        self.pump.join(timeout=30)
        use_services(None)

    def _run(self) -> None:
        queue = self.services.queue
        while not self._stop.is_set():
            try:
                registry = queue.scheduled_job_registry
                for job_id in registry.get_jobs_to_schedule(int(time.time())):
                    registry.requeue(job_id)
                ThreadWorker([queue], connection=self.services.worker_redis,
                             name=f"browser-{uuid.uuid4().hex[:8]}").work(
                    burst=True, logging_level="WARNING")
            except Exception as error:  # noqa: BLE001 - reported by failed_jobs()
                self.errors.append(f"worker loop: {error!r}")
            self._stop.wait(WORKER_PAUSE_SECONDS)

    def failed_jobs(self) -> list[str]:
        """Jobs that raised, with their error, and anything that broke the worker loop."""
        registry = self.services.queue.failed_job_registry
        failed = []
        for job_id in registry.get_job_ids():
            job = self.services.queue.fetch_job(job_id)
            detail = job.latest_result().exc_string if job and job.latest_result() else ""
            failed.append(f"{job_id}: {detail}")
        return failed + self.errors


@pytest.fixture
def live_server(live_socket, services, clock) -> Iterator[LiveServer]:
    """The whole service on a live address: web (threaded) and an RQ worker, time frozen.

    The clock is Tuesday 1 December 2026, 10:00 in London: the centre is open, and so is the
    demo register's Tue/Thu 10:00-12:00 window.
    """
    with LiveServer(live_socket, services) as server, BackgroundWorkers(services) as workers:
        server.workers = workers
        yield server
        failed = workers.failed_jobs()
    assert not failed, "jobs failed:\n" + "\n".join(failed)


@pytest.fixture
def demo_register(services, staff) -> None:
    """The demo people of interest (their designated contacts are the `staff` fixture's)."""
    for row in demo_rows(TODAY):
        fields, errors = parse_entry(row)
        assert fields is not None and not errors, errors
        services.register.save(fields, "browser-test", NOW, TODAY)
    services.register.rebuild_cache(TODAY)


# -- helpers for the tests ---------------------------------------------------------------------


def sign_in_browser(page, base_url: str, email: str, password: str = TEST_PASSWORD,
                    landing: str | None = None) -> None:
    """Sign in through the form in Chromium, as a person does; with `landing`, go on to it."""
    page.goto(f"{base_url}/signin" + (f"?next={landing}" if landing else ""))
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    if landing:
        expect(page).to_have_url(f"{base_url}{landing}")
    else:
        page.wait_for_load_state()


def call_events(services: Services, call_sid: str, *, wait_for: tuple[str, ...] = (),
                timeout: float = 10.0) -> list[CallEvent]:
    """The call log's events for a call, waiting until the given kinds have been pumped in."""
    deadline = time.monotonic() + timeout
    while True:
        with services.sessions() as session:
            events = list(session.scalars(
                select(CallEvent).where(CallEvent.call_sid == call_sid).order_by(CallEvent.id)))
            session.expunge_all()
        kinds = {event.kind for event in events}
        if all(kind in kinds for kind in wait_for) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)
