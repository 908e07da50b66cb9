"""A register import killed between its commit and the routing cache update lets no one through."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sqlalchemy import func, select

from callflow.register import parse_entry
from config.settings import load_settings
from service.app import create_app
from store.call_events import STREAM_KEY, Batch
from store.models import RegisterEntry
from tests.conftest import NOW, TODAY
from tests.faults.processes import ServiceProcess, service_env, wait_until
from tests.webhooks.test_voice_endpoints import incoming, post, twiml

HEADER = ("customer_ref,name,phone_numbers,categories,reason,written_only,decided_by,"
          "decided_on,starts_on,ends_on,evidence,no_warning_reason")
NEW_NUMBERS = ["+447700900201", "+447700900202", "+447700900203"]


def _row(ref: str, number: str) -> str:
    return (f"{ref},Person {ref},{number},aggressive_abusive,Abuse of staff,yes,"
            "manager@example.org,2025-12-15,2026-01-01,2027-12-31,written: call notes,"
            "threats to staff")


def test_an_import_killed_right_after_its_commit_leaves_every_new_restriction_applied(
    services, staff, clock, fault_env, more_services, tmp_path
):
    faulty = more_services(load_settings(fault_env))
    # A register already in the cache, complete and trusted, before the import.
    fields, errors = parse_entry(dict(zip(HEADER.split(","), _row("QL-0", "07700 900200")
                                          .split(","), strict=True)))
    assert not errors
    faulty.register.save(fields, "manager@example.org", NOW, TODAY)
    faulty.register.rebuild_cache(TODAY)
    assert faulty.routing_cache.version() is not None

    csv_path = tmp_path / "register.csv"
    csv_path.write_text("\n".join([HEADER] + [
        _row(f"QL-{i}", number) for i, number in enumerate(NEW_NUMBERS, start=1)]) + "\n")
    importer = ServiceProcess.cli(
        ["register", "import", str(csv_path)],
        service_env(fault_env, CALLFLOW_FAULT_PAUSE_AFTER_COMMIT="600"),
        tmp_path / "import.log",
    ).start()
    try:
        def committed() -> bool:
            with faulty.sessions() as session:
                return session.scalar(select(func.count(RegisterEntry.id))) == 4

        wait_until(committed, 60, "the import's commit")
        importer.kill()
    finally:
        importer.stop()

    client = create_app(services=faulty).test_client()
    for number in NEW_NUMBERS:
        call = {**incoming(number), "CallSid": "CA" + number[1:].rjust(32, "0")}
        root = twiml(post(client, "/twilio/voice/incoming", call))
        assert root.find("Dial") is None and "in writing" in ET.tostring(root, encoding="unicode")
    decisions = [e.detail["outcome"] for _id, raw in faulty.redis.xrange(STREAM_KEY)
                 for e in Batch.decode(raw).events if e.kind == "decision"]
    assert decisions == ["written_only"] * len(NEW_NUMBERS)
    assert "Traceback" not in importer.log()
