"""The real processes log JSON when asked, each record of a call naming its SID and not the
caller's number; /readyz through gunicorn says ready, then not ready once Redis is killed."""

from __future__ import annotations

import json

from tests.faults.processes import (
    ServiceProcess,
    free_port,
    get_json,
    post_signed,
    service_env,
    wait_until,
    web_process,
)

SID = "CA" + "e" * 32
NUMBER = "+447700900777"
REDIS_DOWN = ("Redis cannot be reached. Calls are still answered, using the register in the "
              "database, and call events wait {where} until Redis is back.")


def json_records(log: str) -> list[dict]:
    """The JSON lines of a process's output (gunicorn's own lines are its plain ones)."""
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_json_logs_carry_the_call_sid_and_readyz_follows_redis(fault_env, redis_server,
                                                               tmp_path):
    env = service_env(fault_env, CALLFLOW_LOG_FORMAT="json")
    port = free_port()
    web = web_process(env, tmp_path / "logs", port).start()
    worker = ServiceProcess.part("worker", env, tmp_path / "logs").start()
    try:
        wait_until(lambda: get_json(port, "/healthz")[0] == 200 or not web.running(), 60,
                   "the web server to answer")
        assert get_json(port, "/readyz") == (200, {"status": "ready"})
        wait_until(lambda: any("Listening on" in r["message"]
                               for r in json_records(worker.log())), 30, "the worker to listen")

        redis_server.kill()
        status, _body = post_signed(port, "/twilio/voice/incoming", {
            "CallSid": SID, "From": NUMBER, "To": "+441632960000", "CallStatus": "ringing"}, env)
        assert status == 200
        wait_until(lambda: any(r["call_sid"] == SID for r in json_records(web.log())), 10,
                   "a JSON record naming the call")
        about_the_call = [r for r in json_records(web.log()) if r["call_sid"] == SID]
        assert {r["level"] for r in about_the_call} <= {"WARNING", "ERROR"}
        assert all(r["call_sid"] in (SID, None) for r in json_records(web.log()))
        assert NUMBER not in web.log() and NUMBER[3:] not in web.log()

        # CALLFLOW_EVENT_SPOOL is auto: the database spool on PostgreSQL, the disk on SQLite.
        where = ("on this server's disk" if env["DATABASE_URL"].startswith("sqlite")
                 else "in the database")
        assert get_json(port, "/readyz") == (503, {"status": "not ready",
                                                   "reasons": [REDIS_DOWN.format(where=where)]})
    finally:
        worker.stop()
        web.stop()
