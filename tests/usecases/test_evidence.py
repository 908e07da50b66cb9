"""Evidence against a real database: what is linked to a customer by number and reference, and
a new restriction refused until it cites evidence and follows a warning letter or says why not."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import event, select

from callflow.register import parse_entry
from service import cli
from store.db import transaction
from store.models import AuditRecord, Incident, Proposal, RegisterEntry
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry, entry_form
from usecases.evidence import evidence_of
from usecases.notices import Notices
from usecases.register_csv import ImportRefused, export_register, import_register
from usecases.subject_access import subject_access

MANAGER = "manager@example.org"


def new_entry(**changes: str) -> dict[str, str]:
    """A new entry with no evidence and no reason for skipping the warning letter."""
    return entry_form(**{"evidence": "", "no_warning_reason": "", **changes})


def write(services, row):
    return services.register.write([row], MANAGER, NOW, TODAY, creating=True)


def warning_letter(services, staff, sent: bool = True) -> int:
    notices = Notices(services.register, services.settings)
    notice_id = notices.produce_warning("QL-1", "Pat Example", ["aggressive_abusive"],
                                        "Shouting at staff on 3 calls", staff["manager"].id,
                                        NOW, TODAY)
    if sent:
        notices.mark_sent(notice_id, TODAY, MANAGER, NOW, TODAY)
    return notice_id


def incident_on(services, staff, call_sid: str) -> int:
    with transaction(services.sessions) as session:
        incident = Incident(call_sid=call_sid, reported_by_id=staff["agent"].id,
                            reported_at=NOW, category="threat_or_violence",
                            notes="Threatened to visit")
        session.add(incident)
        session.flush()
        return incident.id


def test_calls_incidents_and_letters_are_linked_by_number_and_by_reference(services, staff):
    start = NOW - timedelta(days=3)
    warned = add_call(services, start, "+447700900123", warned=True)
    ended = add_call(services, start + timedelta(hours=1), "+447700900123", warned=True,
                     ended_by_agent=True)
    add_call(services, start + timedelta(hours=2), "+447700900123")  # nothing happened
    stranger = add_call(services, start, "+447700900999", warned=True)
    # A call from a number not on the entry, tied to them by an agent's proposal.
    proposed = add_call(services, start + timedelta(hours=3), "+447700900555",
                        ended_by_agent=True)
    with transaction(services.sessions) as session:
        session.add(Proposal(call_sid=proposed, customer_ref="QL-1", reason="Abuse",
                             proposed_by_id=staff["agent"].id, proposed_at=NOW))
    incident = incident_on(services, staff, ended)
    incident_on(services, staff, stranger)
    letter = warning_letter(services, staff)
    add_entry(services)

    links = evidence_of(services.sessions, "QL-1")
    assert [(c.call_sid, c.warned, c.ended_by_agent) for c in links.calls] == [
        (warned, True, False), (ended, True, True), (proposed, False, True)]
    assert [i.id for i in links.incidents] == [incident]
    assert [(n.id, n.sent_on) for n in links.warning_letters] == [(letter, TODAY)]
    assert links.counts.text == ("2 calls on which they were warned, 2 calls ended by staff, "
                                 "1 incident, 1 warning letter")


def test_a_new_restriction_without_evidence_or_warning_is_refused_saying_both(services, staff):
    result = write(services, new_entry())
    assert [(e.field, e.message.split(" (")[0].split(":")[0]) for e in result.errors] == [
        ("evidence", "cite the evidence this restriction rests on"),
        ("no_warning_reason", "no formal warning letter has been sent to this customer"),
    ]
    with services.sessions() as session:
        assert session.scalar(select(RegisterEntry)) is None


def test_a_new_restriction_citing_its_incident_after_a_sent_warning_letter_is_saved(
        services, staff):
    sid = add_call(services, NOW - timedelta(days=1), "+447700900123", ended_by_agent=True)
    incident = incident_on(services, staff, sid)
    letter = warning_letter(services, staff)
    result = write(services, new_entry(
        evidence=f"incident {incident}\ncall {sid}\nwarning letter {letter}"))
    assert result.ok, result.errors
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry))
        created = session.scalar(select(AuditRecord).where(AuditRecord.action == "created"))
    assert entry.evidence == [{"kind": "incident", "reference": str(incident)},
                              {"kind": "call", "reference": sid},
                              {"kind": "warning letter", "reference": str(letter)}]
    assert created.changes["evidence"] == [
        "", f"incident {incident}; call {sid}; warning letter {letter}"]


def test_an_unsent_warning_letter_is_not_yet_the_chance_to_change(services, staff):
    warning_letter(services, staff, sent=False)
    result = write(services, new_entry(evidence="written: letter of 3 November"))
    assert [e.field for e in result.errors] == ["no_warning_reason"]


def test_evidence_that_belongs_to_someone_else_is_refused(services, staff):
    other = add_call(services, NOW, "+447700900999", warned=True)
    incident = incident_on(services, staff, other)
    result = write(services, new_entry(evidence=f"incident {incident}; call {other}",
                                       no_warning_reason="Threats to staff (4.3)"))
    assert [str(e) for e in result.errors] == [
        f"evidence: incident {incident} is not linked to this customer's numbers or reference",
        f"evidence: call {other} is not linked to this customer's numbers or reference",
    ]


def test_entries_already_on_the_register_are_changed_without_the_rule(services, staff):
    add_entry(services)
    with transaction(services.sessions) as session:  # as an entry from before this rule
        entry = session.scalar(select(RegisterEntry))
        entry.evidence, entry.no_warning_reason = [], ""
    fields = next(services.register.every_entry())
    assert fields.evidence == ()
    result = services.register.write([{**new_entry(), "staff_notes": "Prefers letters"}],
                                     MANAGER, NOW, TODAY)
    assert result.ok and result.saved[0].action == "updated"


def test_an_import_refuses_new_rows_without_evidence_naming_line_and_column(services, staff):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(new_entry()), lineterminator="\n")
    writer.writeheader()
    writer.writerow(new_entry())
    writer.writerow(new_entry(customer_ref="QL-2", phone_numbers="07700 900456",
                              evidence="written: letters of 1 and 8 November",
                              no_warning_reason="Warned in writing before callflow"))
    try:
        import_register(io.StringIO(out.getvalue()), services.register, "import:test", NOW,
                        TODAY)
    except ImportRefused as refused:
        assert [(e.line, e.column) for e in refused.errors] == [
            (2, "evidence"), (2, "no_warning_reason")]
    else:
        raise AssertionError("the import should have been refused")


def test_postal_address_and_evidence_survive_export_and_import(services, staff):
    add_entry(services, postal_address="Flat 2\n10 High Street\nNorthfield NF1 2AB",
              evidence="written: letter of 3 November; written: call notes of 5 November")
    first = io.StringIO()
    export_register(first, services.register)
    cells = next(csv.DictReader(io.StringIO(first.getvalue())))
    assert cells["postal_address"] == "Flat 2\n10 High Street\nNorthfield NF1 2AB"
    assert cells["evidence"] == ("written: letter of 3 November; "
                                 "written: call notes of 5 November")
    report = import_register(io.StringIO(first.getvalue()), services.register, "import:test",
                             NOW, TODAY)
    assert report.unchanged == 1
    second = io.StringIO()
    export_register(second, services.register)
    assert second.getvalue() == first.getvalue()


def test_subject_access_lists_letters_by_kind_and_date_and_the_evidence_links(services, staff):
    sid = add_call(services, NOW - timedelta(days=1), "+447700900123", warned=True)
    letter = warning_letter(services, staff)
    add_entry(services, evidence=f"call {sid}; written: letter of 3 November")
    record = subject_access(services.sessions, "QL-1")
    assert record["letters"] == [{"id": letter, "kind": "Warning notice",
                                  "produced_on": "2026-12-01", "sent_on": "2026-12-01",
                                  "withdrawn_on": None}]
    evidence = record["evidence"]
    assert evidence["cited"] == [{"kind": "call", "reference": sid},
                                 {"kind": "written", "reference": "letter of 3 November"}]
    assert evidence["calls_warned_or_ended"] == [
        {"call_sid": sid, "started_at": "2026-11-30T10:00:00+00:00", "warned": True,
         "ended_by_staff": False}]
    assert evidence["incidents"] == []
    assert [n["id"] for n in evidence["warning_letters"]] == [letter]


def test_the_cli_shows_the_new_fields_and_what_is_linked(services, staff, monkeypatch):
    add_call(services, NOW - timedelta(days=1), "+447700900123", ended_by_agent=True)
    add_entry(services, postal_address="Flat 2\n10 High Street")
    monkeypatch.setattr(cli, "services", lambda: services)
    shown = CliRunner().invoke(cli.main, ["register", "show", "QL-1"])
    assert shown.exit_code == 0, shown.output
    assert "Postal address:      Flat 2, 10 High Street" in shown.output
    assert ("Evidence (5.1):      written: letter of 3 November about calls to staff"
            in shown.output)
    assert ("Linked to them:      no calls on which they were warned, 1 call ended by staff, "
            "no incidents, no warning letters") in shown.output


def test_parse_entry_accepts_the_factory_row(services):
    fields, errors = parse_entry(entry_form())
    assert errors == [] and fields.evidence


def test_a_batch_judges_each_new_entry_against_its_own_links(services, staff):
    mine = add_call(services, NOW - timedelta(days=1), "+447700900123", warned=True)
    theirs = add_call(services, NOW - timedelta(days=1), "+447700900456", ended_by_agent=True)
    result = services.register.write([
        new_entry(evidence=f"call {mine}", no_warning_reason="Threats to staff"),
        new_entry(customer_ref="QL-2", phone_numbers="07700 900456",
                  evidence=f"call {theirs}; call {mine}", no_warning_reason="Threats to staff"),
    ], MANAGER, NOW, TODAY, creating=True)
    assert [[str(e) for e in problems] for problems in result.problems] == [
        [], [f"evidence: call {mine} is not linked to this customer's numbers or reference"]]


def test_written_evidence_and_a_reason_ask_the_database_nothing_more(services, staff):
    statements: list[str] = []

    def spy(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    rows = [new_entry(customer_ref=f"QL-{n}", phone_numbers=f"07700 900{n:03d}",
                      evidence="written: call notes", no_warning_reason="Threats to staff")
            for n in range(1, 21)]
    event.listen(services.engine, "before_cursor_execute", spy)
    try:
        assert services.register.write(rows, MANAGER, NOW, TODAY, bulk=True).ok
    finally:
        event.remove(services.engine, "before_cursor_execute", spy)
    assert [s for s in statements if re.search(r"FROM (calls|incidents|notices)\b", s)] == []
