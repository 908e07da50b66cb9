"""Register data in and out: bounded fields, every problem at once, no formulas, no loss."""

import csv
import io
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select

from callflow.csv_cells import escape_cell, unescape_cell
from callflow.register import COLUMNS, parse_entry
from store.models import AuditRecord, EntryPhone, RegisterEntry
from tests.conftest import NOW, TODAY
from usecases.register_csv import ImportRefused, export_register, import_register


def base_row(**changes):
    row = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-05-31", "review_on": "2027-03-01",
        "evidence": "written: letter of 3 November about calls to staff",
        "no_warning_reason": "threats of violence to staff (policy 4.3)",
    }
    row.update(changes)
    return row


def csv_text(*rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def do_import(services, text):
    return import_register(io.StringIO(text), services.register, "import:test", NOW, TODAY)


def export_text(services):
    out = io.StringIO()
    export_register(out, services.register)
    return out.getvalue()


# --- bounded fields ----------------------------------------------------------------------------


def test_a_value_longer_than_its_column_is_a_plain_english_field_error():
    _, errors = parse_entry(base_row(name="N" * 250, customer_ref="R" * 83))
    assert sorted((e.field, e.message) for e in errors) == [
        ("customer_ref", "Customer reference must be 64 characters or fewer"),
        ("name", "Name must be 200 characters or fewer"),
    ]


def test_an_import_row_too_long_names_line_and_column_without_personal_data(services, staff):
    secret_name = "Pat " + "Secretname" * 25
    with pytest.raises(ImportRefused) as refused:
        do_import(services, csv_text(base_row(), base_row(customer_ref="QL-2" + "9" * 80,
                                                          name=secret_name,
                                                          phone_numbers="07700 900456")))
    assert [str(e) for e in refused.value.errors] == [
        "line 3, customer_ref: Customer reference must be 64 characters or fewer",
        "line 3, name: Name must be 200 characters or fewer",
    ]
    with services.sessions() as session:
        assert session.scalar(select(RegisterEntry.id)) is None


# --- every problem at once ---------------------------------------------------------------------


def test_every_problem_in_every_field_and_row_is_reported_at_once(services, staff):
    five = base_row(phone_numbers="12345", categories="rude", ends_on="2026-11-01",
                    decided_by="alex@example.org", fallback="voicemail")
    two = base_row(customer_ref="QL-2", phone_numbers="07700 900456", starts_on="soon",
                   review_on="2028-01-01", written_only="no")
    with pytest.raises(ImportRefused) as refused:
        do_import(services, csv_text(five, two))
    assert sorted((e.line, e.column) for e in refused.value.errors) == [
        (2, "categories"), (2, "decided_by"), (2, "ends_on"), (2, "fallback"),
        (2, "phone_numbers"), (3, "starts_on"), (3, "written_only"),
    ]


# --- formulas ----------------------------------------------------------------------------------

TEXTS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+SUM(1,2)", "-2+3", "@cmd", "\tx",
         "\rx", "'=quoted already", "''+two quotes", "'plain quote", "plain", "", "+447700900123",
         "+447700900123; +441914960456", "-12", "'+447700900123", "=", "'"]


@pytest.mark.parametrize("text", TEXTS)
def test_a_cell_round_trips_exactly(text):
    assert unescape_cell(escape_cell(text)) == text


@pytest.mark.parametrize("text", [t for t in TEXTS if t and t[:1] in "=+-@\t\r"
                                  and t not in ("+447700900123", "+447700900123; +441914960456",
                                                "-12")])
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(text):
    assert escape_cell(text).startswith("'")


def test_the_register_export_neutralises_formulas_and_imports_them_back_unchanged(services,
                                                                                  staff):
    do_import(services, csv_text(
        base_row(name="=HYPERLINK(\"http://evil.example\",\"x\")", reason="+SUM(1,2)",
                 staff_notes="@cmd; -2+3"),
    ))
    exported = export_text(services)
    cells = next(csv.DictReader(io.StringIO(exported)))
    assert cells["name"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert cells["reason"] == "'+SUM(1,2)"
    assert cells["staff_notes"] == "'@cmd; -2+3"
    assert cells["phone_numbers"] == "+447700900123"
    with services.sessions() as session:
        session.execute(delete(AuditRecord))
        session.execute(delete(EntryPhone))
        session.execute(delete(RegisterEntry))
        session.commit()
    do_import(services, exported)
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry))
        assert (entry.name, entry.reason, entry.staff_notes) == (
            "=HYPERLINK(\"http://evil.example\",\"x\")", "+SUM(1,2)", "@cmd; -2+3")


# --- lossless round trip -----------------------------------------------------------------------


def test_export_import_export_is_byte_for_byte_for_every_state(services, staff):
    day = timedelta(days=1)
    rows = [
        base_row(customer_ref="QL-ACTIVE", closed_issues="CMP-9: Kitchen refit",
                 staff_notes="Two\nlines", review_on="2027-03-01", notice_sent_on="2026-11-25"),
        base_row(customer_ref="QL-UPCOMING", phone_numbers="07700 900456; 0191 496 0456",
                 starts_on=(TODAY + 10 * day).isoformat(), written_only="no",
                 designated_contact="alex@example.org", fallback="jo@example.org",
                 categories="unreasonable_persistence; unreasonable_demands"),
        base_row(customer_ref="QL-LAPSED", phone_numbers="07700 900789",
                 decided_on="2026-01-01", starts_on="2026-01-02", ends_on="2026-06-30",
                 review_on="2026-06-01"),
        base_row(customer_ref="QL-LIFTED", phone_numbers="07700 900999", written_only="no",
                 call_windows="Tue,Thu 10:00-12:00", visits_by_appointment="yes"),
    ]
    do_import(services, csv_text(*rows))
    services.register.lift("QL-LIFTED", "manager@example.org", "Behaviour improved", NOW)
    first = export_text(services)
    lifted = next(r for r in csv.DictReader(io.StringIO(first))
                  if r["customer_ref"] == "QL-LIFTED")
    assert (lifted["lifted_at"], lifted["lifted_by"], lifted["lifted_reason"]) == (
        NOW.isoformat(), "manager@example.org", "Behaviour improved")

    with services.sessions() as session:
        session.execute(delete(AuditRecord))
        session.execute(delete(EntryPhone))
        session.execute(delete(RegisterEntry))
        session.commit()
    report = do_import(services, first)
    assert report.created == 4
    assert export_text(services) == first
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry)
                               .where(RegisterEntry.customer_ref == "QL-LIFTED"))
        assert entry.lifted_at == NOW and entry.lifted_by.email == "manager@example.org"
    assert services.lookup.lookup("07700 900999", TODAY).restriction is None
    assert services.lookup.lookup("07700 900123", TODAY).restriction is not None
    # and the same file again changes nothing
    assert do_import(services, first).unchanged == 4


def test_an_import_without_the_lift_columns_never_makes_a_lifted_entry_active_again(services,
                                                                                   staff):
    do_import(services, csv_text(base_row()))
    services.register.lift("QL-1", "manager@example.org", "Behaviour improved", NOW)
    do_import(services, csv_text(base_row(staff_notes="changed")))
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None
    with services.sessions() as session:
        assert session.scalar(select(RegisterEntry.lifted_at)) == NOW


def test_a_lift_needs_its_date_who_and_why_together(services, staff):
    with pytest.raises(ImportRefused) as refused:
        do_import(services, csv_text(base_row(lifted_at="2026-12-01T10:00:00+00:00",
                                              lifted_by="nobody@example.org")))
    assert sorted((e.column, e.message) for e in refused.value.errors) == [
        ("lifted_by", "nobody@example.org is not a known staff member"),
        ("lifted_reason", "is required when an entry was lifted"),
    ]


def test_the_lift_date_must_be_a_date_and_time(services, staff):
    _, errors = parse_entry(base_row(lifted_at="yesterday", lifted_by="manager@example.org",
                                     lifted_reason="why"))
    assert [e.field for e in errors] == ["lifted_at"]
    assert date(2026, 12, 1) == TODAY


def test_the_cli_import_reports_a_too_long_row_by_line_and_column_only(services, staff,
                                                                       monkeypatch, tmp_path):
    from service import cli

    monkeypatch.setattr(cli, "services", lambda: services)
    secret_name = "Pat " + "Secretname" * 25
    path = tmp_path / "register.csv"
    path.write_text(csv_text(base_row(name=secret_name)))
    result = CliRunner().invoke(cli.main, ["register", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}: line 2, name: Name must be 200 characters or fewer" in result.output
    assert "Secretname" not in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
