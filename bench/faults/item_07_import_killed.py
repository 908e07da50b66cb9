"""A register import killed right after its commit: every new restriction still applies at once.

A register of one entry is in the routing cache. `callflow register import` (the real process)
adds written-only entries for new numbers and is SIGKILLed after its commit, before it updates the
cache. Each new number then calls (a signed incoming-call webhook): counts callers connected as
normal, and measures how long until the routing cache sync makes the cache complete again.
"""

from __future__ import annotations

import statistics
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bench.faults import Row
from callflow.register import parse_entry
from config.settings import load_settings
from service.app import create_app
from store.db import transaction
from store.models import RegisterEntry
from tests.faults.processes import RedisServer, ServiceProcess, service_env, wait_until
from usecases.bootstrap import Services
from usecases.staff import add_staff

NUMBERS = 20
BASE = "https://callflow.test"
TOKEN = "bench-auth-token"
HEADER = ("customer_ref,name,phone_numbers,categories,reason,written_only,decided_by,"
          "decided_on,starts_on,ends_on")


def _row(ref: str, number: str) -> str:
    return (f"{ref},Person {ref},{number},aggressive_abusive,Abuse of staff,yes,"
            "manager@example.org,2025-12-15,2026-01-01,2099-12-31")


def measure(workdir: Path, database_url: str) -> Row:
    """Run the scenario once; see the module docstring."""
    server = RedisServer(workdir / "redis").start()
    env = {
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": database_url, "REDIS_URL": server.url, "SECRET_KEY": "bench-secret",
        "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": BASE,
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00",
    }
    s = Services(load_settings(env))
    importer = None
    try:
        now = datetime.now(UTC)
        today = now.astimezone(s.settings.tz).date()
        with transaction(s.sessions) as session:
            add_staff(session, email="manager@example.org", name="Manager", role="manager",
                      now=now)
        fields, _ = parse_entry(dict(zip(HEADER.split(","), _row("QL-0", "+447700900000")
                                         .split(","), strict=True)))
        s.register.save(fields, "manager@example.org", now, today)
        s.register.rebuild_cache(today)
        numbers = [f"+4477009{n:05d}" for n in range(1, NUMBERS + 1)]
        csv_path = workdir / "register.csv"
        csv_path.write_text("\n".join(
            [HEADER] + [_row(f"QL-{n}", number) for n, number in enumerate(numbers, 1)]) + "\n")
        importer = ServiceProcess.cli(
            ["register", "import", str(csv_path)],
            service_env(env, CALLFLOW_FAULT_PAUSE_AFTER_COMMIT="600"), workdir / "import.log",
        ).start()

        def committed() -> bool:
            with s.sessions() as session:
                return session.scalar(select(func.count(RegisterEntry.id))) == NUMBERS + 1

        wait_until(committed, 120, "the import's commit")
        importer.kill()
        killed = time.monotonic()

        client = create_app(services=s).test_client()
        let_through, timings = 0, []
        for n, number in enumerate(numbers, 1):
            params = {"CallSid": f"CA{n:032x}", "From": number, "To": "+441632960000",
                      "CallStatus": "ringing"}
            signature = RequestValidator(TOKEN).compute_signature(
                BASE + "/twilio/voice/incoming", params)
            started = time.perf_counter()
            response = client.post("/twilio/voice/incoming", data=params,
                                   headers={"X-Twilio-Signature": signature})
            timings.append((time.perf_counter() - started) * 1000)
            root = ET.fromstring(response.data)
            if root.find("Dial") is not None:
                let_through += 1
        # The scheduled sync runs every minute; here it is tried every second.
        while not s.register.sync_cache(today):
            if time.monotonic() - killed > 120:
                break
            time.sleep(1)
        complete_after = time.monotonic() - killed
    finally:
        if importer is not None:
            importer.stop()
        s.close()
        server.stop()
    return Row(7, "import killed after its commit", NUMBERS, let_through,
               "every new restriction applied to the next call",
               f"{NUMBERS - let_through}/{NUMBERS} restricted; call path on the database "
               f"p50 {statistics.median(timings):.1f} ms; cache complete again "
               f"{complete_after:.0f} s after the kill (sync tried every 1 s)")
