"""A hang-up spooled during a Redis outage ends the live call once replayed; nobody is rung for it.

Callers wait for an agent (none available); Redis is killed (it keeps its data, as production's
append-only Redis does); each caller hangs up, so Twilio's signed `completed` callbacks spool to
disk; Redis comes back and the pump replays the spool. Then an agent becomes available and the
dispatcher's next try runs for every call. Counts calls still not ended and agents rung.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

from bench.faults import Row
from config.settings import load_settings
from service.app import create_app
from store.agent_pool import AgentPool, Availability
from store.db import transaction
from store.live_call import live_call
from tests.faults.processes import DurableRedisServer
from usecases.bootstrap import Services
from usecases.staff import add_staff
from workers import pump
from workers.calls import dispatch_to_pool
from workers.context import use_services

CALLS = 20
BASE = "https://callflow.test"
TOKEN = "bench-auth-token"


class CountingHttp(TwilioHttpClient):
    """Twilio's REST API as far as this scenario needs it: counts the calls placed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def request(self, method, url, params=None, data=None, headers=None, auth=None,
                timeout=None, allow_redirects=False) -> Response:
        """Record the request; answer as Twilio does to a new call."""
        self.sent.append((method, url))
        return Response(201, '{"sid": "CA' + "0" * 32 + '", "status": "queued"}')


def _post(client, path: str, params: dict[str, str]) -> int:
    signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature}).status_code


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = DurableRedisServer(workdir / "redis").start()
    settings = load_settings({
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": database_url, "REDIS_URL": server.url, "SECRET_KEY": "bench-secret",
        "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": BASE,
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00",
    })
    s = Services(settings)
    http = CountingHttp()
    s.twilio_http = http
    use_services(s)
    try:
        now = datetime.now(UTC)
        with transaction(s.sessions) as session:
            agent = add_staff(session, email="agent@example.org", name="Agent", role="agent",
                              now=now, client_identity="agent").id
        s.register.rebuild_cache(now.astimezone(settings.tz).date())
        client = create_app(services=s).test_client()
        sids = [f"CA{n:032x}" for n in range(1, CALLS + 1)]
        for n, sid in enumerate(sids):
            _post(client, "/twilio/voice/incoming", {
                "CallSid": sid, "From": f"+4477009{n:05d}", "To": "+441632960000",
                "CallStatus": "ringing"})
        pump.pump_events()
        server.kill()
        for sid in sids:
            _post(client, "/twilio/voice/status", {
                "CallSid": sid, "CallStatus": "completed", "CallDuration": "30",
                "SequenceNumber": "3"})
        server.start()
        started = time.perf_counter()
        pump.pump_events()
        replay_ms = (time.perf_counter() - started) * 1000
        ended = sum(live_call(s.worker_redis, sid).get("state") == "ended" for sid in sids)
        AgentPool(s.worker_redis).set_availability(agent, Availability.AVAILABLE)
        for sid in sids:
            dispatch_to_pool(sid, 1)  # the dispatcher's next try for each caller
        dialled = sum(1 for method, url in http.sent if url.endswith("/Calls.json"))
        claimed = AgentPool(s.worker_redis).availability(agent) is not Availability.AVAILABLE
    finally:
        use_services(None)
        s.close()
        server.stop()
    return Row(4, "hang-up spooled while Redis was down", CALLS,
               (CALLS - ended) + dialled + int(claimed),
               "every call ended after replay; nobody rung or left claimed",
               f"{ended}/{CALLS} ended; {dialled} dialled; agent "
               f"{'claimed' if claimed else 'free'}; replay of {CALLS} hang-ups {replay_ms:.0f} ms")
