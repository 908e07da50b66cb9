"""The daily jobs, run by a real RQ worker on real Redis with the clock moved by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from rq import SimpleWorker
from rq.cron import CronScheduler
from sqlalchemy import func, select

from store.db import transaction
from store.models import (
    AuditRecord,
    Call,
    CallEvent,
    DeadLetter,
    EntryPhone,
    Notice,
    RegisterEntry,
)
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry
from usecases.notices import Notices
from usecases.subject_access import subject_access
from workers import upkeep
from workers.context import use_services

# 02:15 in London on 1 January 2027, when the night's jobs run.
NEW_YEAR = datetime(2027, 1, 1, 2, 15, tzinfo=UTC)


@pytest.fixture
def worker_services(services, staff, clock):
    use_services(services)
    yield services
    use_services(None)


def run_job(services, name: str):
    """Enqueue a job by its dotted name and let a real worker run it; returns its result."""
    job = services.queue.enqueue(f"workers.upkeep.{name}")
    SimpleWorker([services.queue], connection=services.worker_redis).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result().exc_string
    return job.return_value()


def audits(services, action):
    with services.sessions() as session:
        return session.scalars(select(AuditRecord).where(AuditRecord.action == action)).all()


def test_a_lapse_is_recorded_once_and_the_number_leaves_the_routing_cache(worker_services,
                                                                          clock):
    s = worker_services
    add_entry(s, customer_ref="QL-1", ends_on="2026-12-31", review_on="2026-12-20")
    add_entry(s, customer_ref="QL-2", phone_numbers="07700 900456", ends_on="2027-05-31")
    s.register.rebuild_cache(TODAY)
    assert s.routing_cache.fetch("+447700900123")[1] is not None

    clock.set(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))  # the last day it applies
    assert run_job(s, "record_lapses_job") == []

    clock.set(NEW_YEAR)
    assert run_job(s, "record_lapses_job") == ["QL-1"]
    ready, cached = s.routing_cache.fetch("+447700900123")
    assert ready and cached is None
    assert s.routing_cache.fetch("+447700900456")[1] is not None
    assert run_job(s, "record_lapses_job") == []  # running twice does no harm

    (lapse,) = audits(s, "lapsed")
    assert (lapse.customer_ref, lapse.actor, lapse.at, lapse.changes) == (
        "QL-1", "system", NEW_YEAR, {"lapsed": ["", "2026-12-31"]})
    with s.sessions() as session:
        entry = session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == "QL-1"))
    assert entry.lapse_recorded_at == NEW_YEAR


def test_a_lifted_entry_is_not_recorded_as_lapsed(worker_services, clock):
    s = worker_services
    add_entry(s, ends_on="2026-12-31", review_on="2026-12-20")
    s.register.lift("QL-1", "manager@example.org", "Resolved", NOW)
    clock.set(NEW_YEAR)
    assert run_job(s, "record_lapses_job") == []


def test_the_digest_lists_reviews_due_within_a_fortnight_and_notices_unsent(worker_services,
                                                                           clock):
    s = worker_services
    add_entry(s, customer_ref="QL-1", review_on="2026-12-15", notice_sent_on="2026-11-25")
    add_entry(s, customer_ref="QL-2", phone_numbers="07700 900456", review_on="2026-12-16")
    add_entry(s, customer_ref="QL-3", phone_numbers="07700 900789", review_on="2026-11-30",
              notice_sent_on="2026-11-25")
    found = run_job(s, "review_digest_job")
    assert [e["customer_ref"] for e in found["reviews_due"]] == ["QL-3", "QL-1"]
    assert [e["customer_ref"] for e in found["without_notice"]] == ["QL-2"]
    stored = json.loads(s.worker_redis.get(upkeep.DIGEST_KEY))
    assert stored["date"] == "2026-12-01" and stored["at"] == NOW.isoformat()

    clock.set(NOW + timedelta(days=1))
    found = run_job(s, "review_digest_job")
    assert [e["customer_ref"] for e in found["reviews_due"]] == ["QL-3", "QL-1", "QL-2"]


def test_retention_deletes_old_calls_and_anonymises_old_lapsed_entries_once(worker_services,
                                                                            clock, staff):
    s = worker_services
    old_entry = add_entry(s, customer_ref="QL-OLD", decided_on="2024-01-01",
                          starts_on="2024-01-02", ends_on="2024-06-30", review_on="2024-06-01")
    add_entry(s, customer_ref="QL-NEW", phone_numbers="07700 900456")
    Notices(s.register, s.settings).produce_restriction("QL-OLD", staff["manager"].id, NOW,
                                                        TODAY)
    received = ("received", {"from": "+447700900123", "withheld": False})
    old_call = add_call(s, datetime(2024, 3, 1, 12, 0, tzinfo=UTC), entry_id=old_entry.entry_id,
                        events=(received,))
    kept_call = add_call(s, NOW - timedelta(days=10), events=(received,))

    old_letter, kept_letter = (
        DeadLetter(stream_id=f"1-{n}", call_sid=old_call, fields="{}", error_type="DataError",
                   error="refused", failed_at=at)
        for n, at in ((1, datetime(2024, 3, 1, 12, 0, tzinfo=UTC)), (2, NOW)))
    with transaction(s.sessions) as session:
        session.add_all([old_letter, kept_letter])

    clock.set(datetime(2026, 12, 2, 2, 45, tzinfo=UTC))
    report = run_job(s, "retention_job")
    no_recordings = {"recordings_deleted": 0, "recordings_already_gone": 0,
                     "recordings_kept_for_now": 0}
    assert report == {"calls": 1, "events": 1, "entries": 1, "notices": 1, "dead_letters": 1,
                      **no_recordings}
    assert run_job(s, "retention_job") == {"calls": 0, "events": 0, "entries": 0, "notices": 0,
                                           "dead_letters": 0, **no_recordings}

    with s.sessions() as session:
        assert session.scalars(select(Call.call_sid)).all() == [kept_call]
        assert session.scalar(select(func.count()).select_from(CallEvent)
                              .where(CallEvent.call_sid == old_call)) == 0
        anonymised = session.get(RegisterEntry, old_entry.entry_id)
        assert anonymised.customer_ref == f"anonymised-{old_entry.entry_id}"
        assert (anonymised.name, anonymised.reason) == (None, "(anonymised)")
        assert anonymised.anonymised_at is not None
        assert session.scalar(select(func.count()).select_from(EntryPhone)
                              .where(EntryPhone.entry_id == old_entry.entry_id)) == 0
        assert session.scalar(select(func.count()).select_from(Notice)) == 0
        trail = session.scalars(select(AuditRecord).where(
            AuditRecord.entry_id == old_entry.entry_id).order_by(AuditRecord.id)).all()
        assert [a.action for a in trail] == ["created", "anonymised"]
        assert "Pat Example" not in json.dumps([a.changes for a in trail])
        assert "+447700900123" not in json.dumps([a.changes for a in trail])
        assert session.scalar(select(RegisterEntry.name)
                              .where(RegisterEntry.customer_ref == "QL-NEW")) == "Pat Example"
    assert subject_access(s.sessions, "QL-OLD") is None


def test_the_upkeep_jobs_are_scheduled_nightly_for_rq_cron(services):
    scheduler = CronScheduler(connection=services.worker_redis)
    scheduler.load_config_from_file("workers.cron_upkeep")
    jobs = {job.func_name: job.cron for job in scheduler.get_jobs()}
    assert jobs == {
        "workers.upkeep.record_lapses_job": "15 2 * * *",
        "workers.upkeep.review_digest_job": "30 2 * * *",
        "workers.upkeep.retention_job": "45 2 * * *",
        "workers.upkeep.triage_catch_up_job": "*/15 * * * *",
    }
