"""Whole calls in a test: the app on Flask's test client, Twilio emulated, real RQ workers.

After every step of a call script (the caller presses a key, a member of staff answers...) the
driver runs the workers until nothing is left to do: RQ jobs in burst mode, the stream pump,
and each REST request the jobs made, handed to the emulator (which may post more webhooks,
which may enqueue more jobs). Every REST request must be accepted by Twilio's OpenAPI spec
(the Prism mock), and every job must succeed.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from rq import SimpleWorker
from sqlalchemy import select

from service.app import create_app
from simulator.emulator import SimulatedCall, TwilioEmulator
from store.agent_pool import AgentPool, Availability
from store.call_events import STREAM_KEY
from store.models import Call, CallEvent
from tests.support.twilio_mock import RecordedRequest, TwilioRest
from usecases.bootstrap import Services
from workers import pump
from workers.context import use_services

MAX_ROUNDS = 50


class InlineWorker(SimpleWorker):
    """rq's SimpleWorker without its pub/sub command listener, which tests never use and whose
    thread takes ~0.1 s to stop after every burst."""

    def subscribe(self) -> None:
        """No command channel."""

    def unsubscribe(self) -> None:
        """No command channel."""


def dispose_call_path(services: Services) -> None:
    """Close the call path's database pool (the services fixture disposes only the main one):
    a psycopg connection left for the garbage collector is a ResourceWarning, so an error."""
    if "call_path_sessions" in services.__dict__:
        services.call_path_sessions.kw["bind"].dispose()


class CallDriver:
    """Runs calls end to end: emulator -> signed webhooks -> Redis -> RQ -> Prism -> emulator."""

    def __init__(self, services: Services, twilio_rest: TwilioRest, clock, *,
                 app_services: Services | None = None):
        """`app_services` serves the webhooks when they must differ (e.g. a Redis that is down)."""
        if "twilio" in services.__dict__:
            raise RuntimeError("services.twilio was built before the recording client was set")
        # The workers' REST calls go to the Prism mock and are recorded for the emulator.
        services.twilio_http = twilio_rest.http
        self.services = services
        self.http = twilio_rest.http
        self.clock = clock
        settings = (app_services or services).settings
        self.base_url = settings.public_base_url
        self.app = create_app(services=app_services or services)
        self.client = self.app.test_client()
        self.emulator = TwilioEmulator(
            self.base_url, settings.twilio_auth_token, self._post,
            account_sid=settings.twilio_account_sid, phone_number=settings.twilio_phone_number,
            clock=lambda: clock.now.timestamp(), on_idle=self.settle,
        )
        self.rest: list[RecordedRequest] = []
        self.job_errors: list[str] = []
        self._fed = len(self.http.requests)
        self._idle_order = 0
        self._settling = False
        self._stopped = False
        self._app_services = app_services
        use_services(services)

    def close(self) -> None:
        """Give jobs in this process their own services back; close the call path's pools."""
        use_services(None)
        for built in {id(s): s for s in (self.services, self._app_services) if s}.values():
            dispose_call_path(built)

    # -- the caller's side -------------------------------------------------------------------

    def call(self, from_number: str, to_number: str | None = None) -> SimulatedCall:
        """A caller rings the contact centre."""
        return self.emulator.place_call(from_number, to_number)

    def _post(self, url: str, params: dict[str, str],
              headers: dict[str, str]) -> tuple[int, str, str]:
        if not url.startswith(self.base_url + "/"):
            raise ValueError(f"{url} is not on {self.base_url}")
        response = self.client.post(url[len(self.base_url):], data=params, headers=headers)
        return response.status_code, response.content_type or "", response.get_data(as_text=True)

    # -- the workers -------------------------------------------------------------------------

    def settle(self) -> None:
        """Run jobs, the pump and the REST requests they make until nothing more happens."""
        if self._settling or self._stopped:
            return
        self._settling = True
        try:
            for _ in range(MAX_ROUNDS):
                worked = self._run_workers()
                fed = self._feed_rest()
                if not (worked or fed):
                    break
            else:
                raise AssertionError(f"the call did not settle in {MAX_ROUNDS} rounds")
        finally:
            self._settling = False
        self.check()

    def check(self) -> None:
        """Fail on a failed job, a REST request Twilio's spec refused, or a webhook problem."""
        if self.job_errors:
            raise AssertionError("jobs failed:\n" + "\n".join(self.job_errors))
        self.http.assert_all_accepted()
        if self.emulator.problems:
            raise AssertionError("Twilio would complain:\n" + "\n".join(self.emulator.problems))

    def run_scheduled(self) -> list[str]:
        """Run every job scheduled for later (max-wait voicemail, "try again in 5 s") now."""
        registry = self.services.queue.scheduled_job_registry
        due = registry.get_job_ids()
        for job_id in due:
            registry.requeue(job_id)
        self.settle()
        return due

    def scheduled(self) -> list[str]:
        """The ids of jobs waiting in the scheduled registry."""
        return self.services.queue.scheduled_job_registry.get_job_ids()

    @contextmanager
    def workers_stopped(self) -> Iterator[None]:
        """No worker runs inside the block (webhooks still answer); they catch up after it."""
        self._stopped = True
        try:
            yield
        finally:
            self._stopped = False
        self.settle()

    def _run_workers(self) -> bool:
        queue = self.services.queue
        redis = self.services.worker_redis
        progressed = False
        for _ in range(MAX_ROUNDS):
            if queue.count:
                self._work_burst()
            elif redis.xlen(STREAM_KEY):
                # The pump job is kicked at most every 250 ms, so entries can be left behind.
                before = redis.xlen(STREAM_KEY)
                pump.pump_events()
                if redis.xlen(STREAM_KEY) >= before:
                    raise AssertionError(f"{before} stream entries are stuck in {STREAM_KEY}")
            else:
                return progressed
            progressed = True
        raise AssertionError(f"the workers were still busy after {MAX_ROUNDS} rounds")

    def _work_burst(self) -> None:
        # rq installs its own SIGINT/SIGTERM handlers; give pytest its own back.
        saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        try:
            InlineWorker([self.services.queue], connection=self.services.worker_redis,
                         exception_handlers=[self._job_failed]).work(
                burst=True, logging_level="WARNING")
        finally:
            signal.signal(signal.SIGINT, saved[0])
            signal.signal(signal.SIGTERM, saved[1])

    def _job_failed(self, job, exc_type, exc_value, _traceback) -> bool:
        self.job_errors.append(f"{job.func_name} ({job.id}): {exc_type.__name__}: {exc_value}")
        return True

    def _feed_rest(self) -> bool:
        new = self.http.requests[self._fed:]
        self._fed += len(new)
        self.http.assert_all_accepted()
        for request in new:
            self.rest.append(request)
            self.emulator.apply_rest(request.method, request.path, request.params)
        return bool(new)

    # -- staff, and what was recorded --------------------------------------------------------

    def set_available(self, member, idle_since: float | None = None) -> None:
        """Make a member of staff available; those made available first have waited longest."""
        self._idle_order += 1
        AgentPool(self.services.worker_redis).set_availability(
            member.id, Availability.AVAILABLE, now=idle_since or 1_000_000 + self._idle_order)

    def availability(self, member) -> Availability:
        """A member of staff's availability in the agent pool."""
        return AgentPool(self.services.worker_redis).availability(member.id)

    def calls_created(self) -> list[RecordedRequest]:
        """The Calls.create requests the workers made (staff legs dialled)."""
        return [r for r in self.rest if r.method == "POST" and r.path.endswith("/Calls.json")]

    def call_updates(self, call_sid: str) -> list[RecordedRequest]:
        """The REST updates the workers made to one call (redirects, hang-ups)."""
        return [r for r in self.rest if r.method == "POST"
                and r.path.endswith(f"/Calls/{call_sid}.json")]

    def call_log(self, call_sid: str) -> tuple[Call | None, list[CallEvent]]:
        """The call's summary row and its events, in the order they were recorded."""
        with self.services.sessions() as session:
            row = session.scalar(select(Call).where(Call.call_sid == call_sid))
            events = list(session.scalars(
                select(CallEvent).where(CallEvent.call_sid == call_sid).order_by(CallEvent.id)))
            session.expunge_all()
        return row, events

    def event_counts(self, call_sid: str) -> Counter[str]:
        """How many times each event kind was recorded for a call."""
        return Counter(event.kind for event in self.call_log(call_sid)[1])

    def at(self, moment: datetime) -> None:
        """Move the service's clock (webhooks and jobs read it through config.clock)."""
        self.clock.set(moment)
