"""The triage queue against a real database: voicemails from the register queued once, outcomes
recorded with who and when and audited, overdue items flagged, roles held to."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callflow import events
from callflow.register import EntryInvalid
from callflow.triage import TriageDecision, TriageOutcome, TriageSource
from store.call_events import Batch
from store.call_log import CallLog
from store.db import transaction
from store.models import AuditRecord, TriageItem
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry, day
from usecases import triage

LONDON = ZoneInfo("Europe/London")
SID = "CA" + "7" * 32
URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"


def call_with_voicemail(services, entry_id: int | None, number: str = "+447700900123",
                        sid: str = SID) -> int:
    batch = Batch.of(
        sid,
        events.received(NOW, number, "+441632960000", False),
        events.looked_up(NOW, "cache", False, entry_id),
        events.voicemail(NOW + timedelta(minutes=1), "RE1", URL, "31"),
    )
    with transaction(services.sessions) as session:
        return CallLog(session).record([batch])


def items(services) -> list[TriageItem]:
    with services.sessions() as session:
        return list(session.scalars(select(TriageItem).order_by(TriageItem.id)))


def test_a_voicemail_from_the_register_is_queued_once_however_often_it_is_replayed(
        services, staff):
    saved = add_entry(services)
    assert call_with_voicemail(services, saved.entry_id) == 3
    assert call_with_voicemail(services, saved.entry_id) == 0
    [item] = items(services)
    assert (item.call_sid, item.entry_id, item.customer_ref, item.source, item.received_at,
            item.recording_url, item.outcome, item.handled_at) == (
        SID, saved.entry_id, "QL-1", "voicemail", NOW + timedelta(minutes=1), URL, None, None)


def test_a_voicemail_from_a_caller_not_on_the_register_is_not_queued(services, staff):
    call_with_voicemail(services, None, number="+447700900999")
    assert items(services) == []


def test_a_voicemail_logged_before_its_lookup_is_caught_up_once(services, staff):
    saved = add_entry(services)
    with transaction(services.sessions) as session:
        CallLog(session).record([Batch.of(SID, events.voicemail(NOW, "RE1", URL, "31"))])
    assert items(services) == []
    with transaction(services.sessions) as session:
        CallLog(session).record([Batch.of(SID, events.looked_up(NOW, "cache", False,
                                                                saved.entry_id))])
    assert triage.catch_up(services.sessions) == 1
    assert triage.catch_up(services.sessions) == 0
    assert [i.call_sid for i in items(services)] == [SID]


def test_waiting_items_carry_their_due_date_and_are_flagged_once_overdue(services, staff):
    saved = add_entry(services)
    call_with_voicemail(services, saved.entry_id)
    [on_time] = triage.waiting(services.sessions, LONDON, 5, day(5))
    assert (on_time.due_on, on_time.overdue, on_time.source, on_time.has_recording) == (
        day(5), False, TriageSource.VOICEMAIL, True)
    [late] = triage.waiting(services.sessions, LONDON, 5, day(6))
    assert late.overdue is True
    assert triage.overdue_count(services.sessions, LONDON, 5, day(6)) == 1


def test_an_outcome_records_who_handled_it_and_is_audited_before_and_after(services, staff):
    saved = add_entry(services)
    call_with_voicemail(services, saved.entry_id)
    [item] = items(services)
    triage.record_outcome(services.sessions, item.id,
                          TriageDecision(TriageOutcome.NEW_ISSUE, "Logged repair 55"),
                          "supervisor@example.org", NOW + timedelta(hours=1))
    triage.record_outcome(services.sessions, item.id,
                          TriageDecision(TriageOutcome.SAFEGUARDING, "Logged repair 55"),
                          "manager@example.org", NOW + timedelta(hours=2))
    [handled] = triage.recently_handled(services.sessions, LONDON, 5, day(9))
    assert (handled.outcome, handled.handled_by, handled.handled_at, handled.overdue) == (
        TriageOutcome.SAFEGUARDING, "Manager", NOW + timedelta(hours=2), False)
    assert triage.waiting(services.sessions, LONDON, 5, day(9)) == []
    with services.sessions() as session:
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "triaged")
                                .order_by(AuditRecord.id)).all()
    assert [(a.actor, a.customer_ref, a.changes) for a in audit] == [
        ("supervisor@example.org", "QL-1", {
            "triage_outcome": ["", "A new, unrelated issue"],
            "triage_notes": ["", "Logged repair 55"],
            "triage_handled_by": ["", "Supervisor"]}),
        ("manager@example.org", "QL-1", {
            "triage_outcome": ["A new, unrelated issue", "A safeguarding concern"],
            "triage_handled_by": ["Supervisor", "Manager"]}),
    ]


def test_agents_may_not_triage(services, staff):
    saved = add_entry(services)
    call_with_voicemail(services, saved.entry_id)
    [item] = items(services)
    with pytest.raises(PermissionError, match="supervisors and managers triage messages"):
        triage.record_outcome(services.sessions, item.id,
                              TriageDecision(TriageOutcome.SAME_CLOSED_ISSUE),
                              "alex@example.org", NOW)
    assert items(services)[0].outcome is None


def test_a_message_that_came_another_way_is_queued_and_audited(services, staff):
    add_entry(services)
    item_id = triage.add_message(services.sessions, "QL-1", "Letter about the boiler",
                                 NOW - timedelta(days=1), "supervisor@example.org", NOW)
    [waiting] = triage.waiting(services.sessions, LONDON, 5, TODAY)
    assert (waiting.id, waiting.source, waiting.summary, waiting.due_on) == (
        item_id, TriageSource.MESSAGE, "Letter about the boiler", day(4))


def test_every_problem_with_a_message_is_reported_at_once(services, staff):
    with pytest.raises(EntryInvalid) as refused:
        triage.add_message(services.sessions, "QL-404", " ", NOW, "supervisor@example.org", NOW)
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("customer_ref", "QL-404 is not on the register"),
        ("summary", "say briefly what the message is about"),
    ]
    assert items(services) == []


def test_subject_access_includes_needs_representatives_and_what_they_left(services, staff):
    from usecases.subject_access import subject_access

    saved = add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
                      adjustments="large_print",
                      representatives="Jo Bloggs | advocate | 07700 900456 | covered")
    call_with_voicemail(services, saved.entry_id)
    [item] = items(services)
    triage.record_outcome(services.sessions, item.id,
                          TriageDecision(TriageOutcome.SAME_CLOSED_ISSUE), "manager@example.org",
                          NOW)
    held = subject_access(services.sessions, "QL-1")
    (entry,) = held["entries"]
    assert entry["needs"] == ["Large print"]
    assert entry["adjustments"] == [{"need": "large_print", "detail": ""}]
    assert entry["representatives"] == [{"name": "Jo Bloggs", "relationship": "advocate",
                                         "phone_numbers": ["+447700900456"], "covered": True}]
    (left,) = held["voicemails_and_messages"]
    assert (left["call_sid"], left["source"], left["outcome"], left["handled_by"]) == (
        SID, "voicemail", "same_closed_issue", "Manager")


def test_the_command_line_lists_and_records_triage(services, staff, monkeypatch):
    from click.testing import CliRunner

    from service import cli as service_cli

    monkeypatch.setattr(service_cli, "services", lambda: services)
    monkeypatch.setattr("config.clock.now_utc", lambda: NOW + timedelta(days=6))

    def run(*args: str):
        return CliRunner().invoke(service_cli.main, list(args))

    saved = add_entry(services)
    call_with_voicemail(services, saved.entry_id)
    [item] = items(services)
    listed = run("triage", "list")
    assert listed.output == (f"{item.id:>6}  QL-1         Voicemail  came in Tue 1 Dec 2026, "
                             "10:01am, due by Sun 6 Dec 2026  OVERDUE\n1 waiting, 1 overdue\n")
    refused = run("triage", "record", str(item.id), "--by", "supervisor@example.org",
                  "--outcome", "safeguarding")
    assert (refused.exit_code, refused.output) == (
        1, "Error: --notes: say what was done about it (a safeguarding concern)\n")
    done = run("triage", "record", str(item.id), "--by", "supervisor@example.org",
               "--outcome", "safeguarding", "--notes", "Raised with the safeguarding lead")
    assert (done.exit_code, done.output) == (0, f"item {item.id}: a safeguarding concern\n")
    assert run("triage", "list").output == "0 waiting, 0 overdue\n"
    assert run("triage", "catch-up").output == "0 voicemail(s) queued\n"


def test_retention_removes_needs_representatives_and_what_they_left(services, staff):
    from datetime import UTC, datetime

    from store.models import RegisterEntry, RepresentativePhone
    from usecases.upkeep import apply_retention

    old = add_entry(services, decided_on="2024-01-01", starts_on="2024-01-02",
                    ends_on="2024-06-30", review_on="2024-06-01", written_only="no",
                    call_windows="Tue 10:00-12:00", adjustments="interpreter: Polish",
                    representatives="Jo Bloggs | advocate | 07700 900456 | covered")
    triage.add_message(services.sessions, "QL-1", "Letter about the boiler",
                       datetime(2024, 3, 1, tzinfo=UTC), "supervisor@example.org", NOW)
    apply_retention(services.sessions, NOW, TODAY, 730)
    with services.sessions() as session:
        entry = session.get(RegisterEntry, old.entry_id)
        assert (entry.adjustments, entry.representatives, entry.written_only_exception) == (
            [], [], "")
        assert session.scalars(select(RepresentativePhone)).all() == []
    assert items(services) == []


def test_the_catch_up_job_runs_on_a_real_worker_and_queues_a_missed_voicemail_once(
        services, staff):
    from rq import SimpleWorker

    from workers.context import use_services

    saved = add_entry(services)
    with transaction(services.sessions) as session:
        CallLog(session).record([Batch.of(SID, events.voicemail(NOW, "RE1", URL, "31"))])
        CallLog(session).record([Batch.of(SID, events.looked_up(NOW, "cache", False,
                                                                saved.entry_id))])
    use_services(services)
    try:
        results = []
        for _ in range(2):
            job = services.queue.enqueue("workers.upkeep.triage_catch_up_job")
            SimpleWorker([services.queue], connection=services.worker_redis).work(burst=True)
            job.refresh()
            results.append(job.return_value())
    finally:
        use_services(None)
    assert results == [1, 0]
    assert [i.call_sid for i in items(services)] == [SID]
