"""Callbacks in a shuffled order (completed before ringing, duplicates) leave every call ended.

50 calls; each gets its signed status callbacks (ringing, in-progress, completed, a repeated
completed and a repeated ringing), a late redirect to voicemail and a late worker write of
"ringing", in a random order. Counts calls whose live state or call log row is not final.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bench.faults import Row
from config.settings import load_settings
from service.app import create_app
from store.live_call import live_call, set_live
from store.models import Call
from tests.faults.processes import RedisServer
from usecases.bootstrap import Services
from workers import pump
from workers.context import use_services

CALLS = 50
BASE = "https://callflow.test"
TOKEN = "bench-auth-token"


def _post(client, path: str, params: dict[str, str], query: str = "") -> None:
    url = BASE + path + (f"?{query}" if query else "")
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    client.post(path + (f"?{query}" if query else ""), data=params,
                headers={"X-Twilio-Signature": signature})


def _status(sid: str, name: str, sequence: int) -> dict[str, str]:
    return {"CallSid": sid, "CallStatus": name, "SequenceNumber": str(sequence),
            "CallDuration": "42" if name == "completed" else ""}


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = RedisServer(workdir / "redis").start()
    settings = load_settings({
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": database_url, "REDIS_URL": server.url, "SECRET_KEY": "bench-secret",
        "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": BASE,
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00",
    })
    s = Services(settings)
    use_services(s)
    rng = random.Random(5)
    sent = 0
    try:
        client = create_app(services=s).test_client()
        sids = [f"CA{n:032x}" for n in range(1, CALLS + 1)]
        started = time.perf_counter()
        for n, sid in enumerate(sids):
            _post(client, "/twilio/voice/incoming", {
                "CallSid": sid, "From": f"+4477009{n:05d}", "To": "+441632960000",
                "CallStatus": "ringing"})
            steps = [
                lambda sid=sid: _post(client, "/twilio/voice/status", _status(sid, "ringing", 0)),
                lambda sid=sid: _post(client, "/twilio/voice/status",
                                      _status(sid, "in-progress", 1)),
                lambda sid=sid: _post(client, "/twilio/voice/status",
                                      _status(sid, "completed", 2)),
                lambda sid=sid: _post(client, "/twilio/voice/status",
                                      _status(sid, "completed", 2)),
                lambda sid=sid: _post(client, "/twilio/voice/status", _status(sid, "ringing", 0)),
                lambda sid=sid: _post(client, "/twilio/voice/voicemail", {"CallSid": sid},
                                      query=f"call={sid}"),
                lambda sid=sid: set_live(s.worker_redis, sid, {"state": "ringing"}),
            ]
            rng.shuffle(steps)
            for step in steps:
                step()
                sent += 1
        per_request_ms = (time.perf_counter() - started) * 1000 / (sent + CALLS)
        pump.pump_events()
        live_wrong = {sid for sid in sids if live_call(s.worker_redis, sid).get("state") != "ended"}
        with s.sessions() as session:
            statuses = dict(session.execute(
                select(Call.call_sid, Call.status).where(Call.call_sid.in_(sids))).all())
        log_wrong = {sid for sid in sids if statuses.get(sid) != "completed"}
    finally:
        use_services(None)
        s.close()
        server.stop()
    return Row(5, "callbacks out of order", CALLS, len(live_wrong | log_wrong),
               f"{CALLS} of {CALLS} calls final in live state and call log",
               f"live {CALLS - len(live_wrong)}/{CALLS}, log {CALLS - len(log_wrong)}/{CALLS} "
               f"final; "
               f"{per_request_ms:.2f} ms a webhook")
