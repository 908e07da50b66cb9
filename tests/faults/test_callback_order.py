"""Callbacks in any order, some twice: a call that has ended stays ended (item 5).

Twilio does not promise the order of its callbacks; a late redirect to voicemail or a worker
that dialled an agent just as the caller hung up must not bring a finished call back either.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from store.call_events import STREAM_KEY, Batch
from store.live_call import live_call, set_live
from store.models import Call
from workers import pump
from workers.context import use_services

BASE = "https://callflow.test"
CALLS = 50


@pytest.fixture
def workers(services):
    use_services(services)
    yield
    use_services(None)


def post(client, path: str, params: dict[str, str], query: str = "") -> int:
    url = f"{BASE}{path}" + (f"?{query}" if query else "")
    signature = RequestValidator("test-auth-token").compute_signature(url, params)
    response = client.post(path + (f"?{query}" if query else ""), data=params,
                           headers={"X-Twilio-Signature": signature})
    return response.status_code


def status(sid: str, name: str, sequence: int, **extra: str) -> dict[str, str]:
    return {"CallSid": sid, "CallStatus": name, "SequenceNumber": str(sequence),
            "Timestamp": f"Tue, 01 Dec 2026 10:00:{sequence:02d} +0000",
            "CallbackSource": "call-progress-events", **extra}


def worker_rings(services, sid: str) -> int:
    """What a worker writes once it has dialled an agent (workers.calls._dial)."""
    set_live(services.worker_redis, sid, {"state": "ringing"})
    return 204


def shuffled_calls(client, services) -> list[str]:
    """50 calls, each: the incoming call, then its callbacks (and a late worker write) shuffled."""
    rng = random.Random(5)
    sids = [f"CA{n:032x}" for n in range(1, CALLS + 1)]
    for n, sid in enumerate(sids):
        incoming = {"CallSid": sid, "From": f"+4477009{n:05d}", "To": "+441632960000",
                    "CallStatus": "ringing"}
        assert post(client, "/twilio/voice/incoming", incoming) == 200
        steps: list[Callable[[], object]] = [
            lambda sid=sid: post(client, "/twilio/voice/status", status(sid, "ringing", 0)),
            lambda sid=sid: post(client, "/twilio/voice/status", status(sid, "in-progress", 1)),
            lambda sid=sid: post(client, "/twilio/voice/status",
                                 status(sid, "completed", 2, CallDuration="42")),
            # Twilio retries a callback it thinks failed: the same one again.
            lambda sid=sid: post(client, "/twilio/voice/status",
                                 status(sid, "completed", 2, CallDuration="42")),
            lambda sid=sid: post(client, "/twilio/voice/status", status(sid, "ringing", 0)),
            # The redirect to voicemail, racing the caller's hang-up.
            lambda sid=sid: post(client, "/twilio/voice/voicemail", {"CallSid": sid},
                                 query=f"call={sid}"),
            # A worker that dialled an agent as the caller hung up.
            lambda sid=sid: worker_rings(services, sid),
        ]
        rng.shuffle(steps)
        for step in steps:
            assert step() in (200, 204)
    return sids


def test_a_call_that_ended_stays_ended_in_the_live_state_whatever_the_order(client, services):
    sids = shuffled_calls(client, services)
    states = [live_call(services.redis, sid).get("state") for sid in sids]
    assert states.count("ended") == CALLS, states

    batches = [Batch.decode(fields) for _id, fields in services.redis.xrange(STREAM_KEY)]
    reports = {(b.call_sid, e.key, e.detail["sequence"]) for b in batches for e in b.events
               if e.kind == "status"}
    assert len(reports) == 3 * CALLS, "three distinct callbacks a call, each kept distinct"
    assert {sequence for _sid, _key, sequence in reports} == {0, 1, 2}


def test_a_call_that_ended_stays_ended_in_the_call_log_whatever_the_order(client, services,
                                                                          workers):
    sids = shuffled_calls(client, services)
    pump.pump_events()
    with services.sessions() as session:
        rows = session.execute(select(Call.call_sid, Call.status, Call.duration_seconds)
                               .where(Call.call_sid.in_(sids))).all()
    assert len(rows) == CALLS and all(row.duration_seconds == 42 for row in rows)
    assert [row.call_sid for row in rows if row.status != "completed"] == []
