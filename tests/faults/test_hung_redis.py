"""A hung Redis (SIGSTOP): every webhook is still answered, the breaker keeps requests off Redis,
the events wait in the spool, and /healthz says degraded until Redis answers again."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.faults.processes import (
    ServiceProcess,
    free_port,
    get_json,
    post_signed,
    service_env,
    wait_until,
    web_process,
)

CALLS = 12
SPOKEN = {"Say", "Play", "Dial", "Gather", "Record"}


def call_sid(n: int) -> str:
    """A well-formed CallSid, different for each n."""
    return f"CA{n:032x}"


def incoming(n: int) -> dict[str, str]:
    """Twilio's incoming-call parameters for the n-th fictional caller."""
    return {"CallSid": call_sid(n), "From": f"+44770090{n:04d}", "To": "+441632960000",
            "CallStatus": "ringing"}


def status(n: int) -> dict[str, str]:
    """A final status callback for the n-th call."""
    return {"CallSid": call_sid(n), "CallStatus": "completed", "CallDuration": "30",
            "SequenceNumber": "1"}


def routes_the_caller(body: bytes) -> bool:
    """True when the TwiML parses and says, plays or dials something (never silence)."""
    root = ET.fromstring(body)
    return root.tag == "Response" and any(node.tag in SPOKEN for node in root.iter())


def spooled(var_dir: Path) -> list[dict]:
    """The batches waiting in the disk spool."""
    spool = var_dir / "spool"
    return [json.loads(line) for path in sorted(spool.glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def start_web(fault_env: dict[str, str], tmp_path: Path) -> tuple[ServiceProcess, int]:
    """gunicorn on a free port, answering /healthz."""
    port = free_port()
    web = web_process(service_env(fault_env), tmp_path / "logs", port).start()
    wait_until(lambda: get_json(port, "/healthz")[0] == 200 or not web.running(), 60,
               "the web server to answer")
    assert web.running(), web.log()
    return web, port


def test_every_webhook_is_answered_while_redis_hangs_and_the_events_wait_in_the_spool(
        fault_env, redis_server, tmp_path):
    web, port = start_web({**fault_env, "CALLFLOW_EVENT_SPOOL": "disk"}, tmp_path)
    try:
        assert get_json(port, "/healthz") == (200, {"status": "ok"})
        redis_server.freeze()
        answers = [post_signed(port, "/twilio/voice/incoming", incoming(n), fault_env)
                   for n in range(CALLS)]
        statuses = [post_signed(port, "/twilio/voice/status", status(n), fault_env)[0]
                    for n in range(CALLS)]
        health = get_json(port, "/healthz")

        assert [code for code, _ in answers] == [200] * CALLS
        assert sum(routes_the_caller(body) for _, body in answers) == CALLS
        assert statuses == [204] * CALLS
        assert health[0] == 200 and health[1]["status"] == "degraded"
        assert "Redis cannot be reached" in health[1]["reasons"][0]
        # Every request's events are on disk, one batch each, for the pump to replay.
        batches = spooled(Path(fault_env["CALLFLOW_VAR_DIR"]))
        assert sorted(batch["sid"] for batch in batches) == sorted(
            [call_sid(n) for n in range(CALLS)] * 2)
        # The breaker opened once: the web logged the outage once, not once per request.
        assert web.log().count("Redis is not answering") == 1

        redis_server.thaw()
        wait_until(lambda: get_json(port, "/healthz")[1].get("status") == "ok", 15,
                   "/healthz to say ok again")
        assert web.log().count("Redis is answering again") == 1
        assert web.running()
    finally:
        redis_server.thaw()
        web.stop()
