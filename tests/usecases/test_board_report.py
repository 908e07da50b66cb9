"""The board's oversight report from a real database: the register, reviews, appeals and the
call log; its page (managers and supervisors only), CSV and PDF."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from callflow.board_report import ReportPeriod
from store.models import Appeal, Call, CallEvent, RegisterEntry, Review
from tests.conftest import NOW, TODAY
from tests.support.web_client import client_signed_in_as
from tests.usecases.test_register_csv import base_row, csv_text, do_import
from usecases.board_report import board_report, report_csv, report_pdf

PERIOD = ReportPeriod(date(2026, 11, 1), TODAY)
SID = "CA{:032x}"


def figures(report, key):
    table = next(t for s in report.sections for t in s.tables if t.key == key)
    return {f.label: f.count for f in table.figures}


@pytest.fixture
def register(services, staff):
    """Two restrictions (one with call limits), a review, an appeal and four calls."""
    do_import(services, csv_text(
        base_row(customer_ref="QL-1"),
        base_row(customer_ref="QL-2", phone_numbers="07700 900456", written_only="no",
                 categories="unreasonable_persistence", call_frequency="1 a day",
                 max_call_minutes="15", starts_on="2026-11-25", ends_on="2027-01-31",
                 review_on="2027-01-15"),
    ))
    manager = staff["manager"]
    with services.sessions() as session:
        first, second = session.query(RegisterEntry).order_by(RegisterEntry.id).all()
        session.add(Review(entry_id=first.id, reviewed_by_id=manager.id, reviewed_at=NOW,
                           reviewed_on=date(2026, 11, 20), outcome="continue", reasons="Still",
                           previous_review_on=date(2026, 11, 15),
                           next_review_on=date(2027, 3, 1)))
        session.add(Appeal(entry_id=first.id, received_on=date(2026, 11, 3), channel="letter",
                           grounds="Unfair", recorded_by_id=manager.id, recorded_at=NOW,
                           decide_by=date(2026, 11, 24), decided_by_id=manager.id,
                           decided_at=datetime(2026, 11, 21, 12, tzinfo=UTC), outcome="varied"))
        calls = [(1, None, "centre", True, True), (2, second.id, "within_window", False, True),
                 (3, second.id, "over_call_limit", False, False), (4, None, "centre", True, False)]
        for n, entry_id, decision, warned, ended in calls:
            session.add(Call(call_sid=SID.format(n), started_at=NOW - timedelta(days=n),
                             entry_id=entry_id, decision=decision, warned=warned,
                             ended_by_agent=ended))
        at = NOW - timedelta(hours=1)
        session.add_all([
            CallEvent(event_key=f"{SID.format(1)}:ended_by_agent", call_sid=SID.format(1),
                      kind="ended_by_agent", at=at, detail={"reason": None}),
            CallEvent(event_key=f"{SID.format(1)}:wrap_up", call_sid=SID.format(1),
                      kind="wrap_up", at=at, detail={"reason": "unreasonable_demands"}),
            CallEvent(event_key=f"{SID.format(2)}:time-warning", call_sid=SID.format(2),
                      kind="time_warning", at=at, detail={"minutes": 15}),
            CallEvent(event_key=f"{SID.format(2)}:ended_by_agent", call_sid=SID.format(2),
                      kind="ended_by_agent", at=at,
                      detail={"reason": "call_length_limit", "by": "callflow"}),
        ])
        session.commit()


def test_the_report_counts_the_register_reviews_appeals_and_calls(services, register):
    report = board_report(services, PERIOD, TODAY)
    assert figures(report, "categories")["Aggressive, abusive or intimidating behaviour (3.1)"] == 1
    assert figures(report, "arrangements")["Call length or frequency limits (4.6)"] == 1
    assert figures(report, "changes")["New restrictions"] == 2
    assert figures(report, "review_timeliness")["Late"] == 1
    assert figures(report, "appeal_outcomes")["Varied: the arrangements changed"] == 1
    assert figures(report, "warnings") == {
        "Calls where the caller was warned about their behaviour": 2,
        "Calls where the caller was told the agreed call length was nearly up": 1}
    ended = figures(report, "ended")
    assert ended["Unreasonable demands (3.2)"] == 1, "the wrap-up's reason is the reason"
    assert ended["The agreed call length was reached (4.6)"] == 1
    assert figures(report, "contact_outcomes")["Over their agreed number of calls"] == 1


def test_the_csv_and_the_pdf_carry_the_same_figures(services, register):
    report = board_report(services, PERIOD, TODAY)
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0] == ["section", "table", "measure", "count"]
    assert ["Appeals", "Appeals decided in the period", "Varied: the arrangements changed",
            "1"] in rows
    assert len(rows) == 1 + len(report.rows())
    pdf = report_pdf(report)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 2000


def test_managers_and_supervisors_read_the_report_and_agents_cannot(app, register):
    query = "?from=2026-11-01&to=2026-12-01"
    for email in ("manager@example.org", "supervisor@example.org"):
        page = client_signed_in_as(app, email).get(f"/workspace/board-report{query}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "1 November 2026 to 1 December 2026" in html
        assert 'id="chart-ended"' in html and "The figures in this chart" in html
    agent = client_signed_in_as(app, "alex@example.org")
    for path in ("/workspace/board-report", "/workspace/board-report.csv",
                 "/workspace/board-report.pdf"):
        assert agent.get(path + query).status_code == 403


def test_the_downloads_are_named_for_their_period(app, register):
    manager = client_signed_in_as(app, "manager@example.org")
    got = manager.get("/workspace/board-report.csv?from=2026-11-01&to=2026-11-30")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert got.headers["Content-Disposition"] == (
        'attachment; filename="oversight-report-2026-11-01-to-2026-11-30.csv"')
    pdf = manager.get("/workspace/board-report.pdf?from=2026-11-01&to=2026-11-30")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")


def test_a_bad_period_is_explained_field_by_field_all_at_once(app, staff):
    manager = client_signed_in_as(app, "manager@example.org")
    page = manager.get("/workspace/board-report?from=31/02/2026&to=")
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "The first day is not a date: write it as 2026-11-30 or 30/11/2026" in html
    assert "Give the last day of the period" in html
    backwards = manager.get("/workspace/board-report.csv?from=2026-11-30&to=2026-11-01")
    assert backwards.status_code == 400
    assert backwards.get_data(as_text=True) == "The last day must be on or after the first day\n"


def test_without_a_period_the_last_whole_month_is_shown(app, staff):
    page = client_signed_in_as(app, "manager@example.org").get("/workspace/board-report")
    assert page.status_code == 200
    assert "1 November 2026 to 30 November 2026" in page.get_data(as_text=True)


def test_the_command_line_writes_the_csv_or_the_pdf(services, register, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from service import cli

    monkeypatch.setattr(cli, "services", lambda: services)
    as_csv = CliRunner().invoke(cli.main, ["board-report", "--from", "2026-11-01",
                                           "--to", "01/12/2026"])
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.output == report_csv(board_report(services, PERIOD, TODAY))
    pdf = tmp_path / "report.pdf"
    as_pdf = CliRunner().invoke(cli.main, ["board-report", "--from", "2026-11-01", "--to",
                                           "2026-12-01", "--pdf", str(pdf)])
    assert as_pdf.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF-")


def test_the_command_line_names_every_bad_option(services, staff, monkeypatch):
    from click.testing import CliRunner

    from service import cli

    monkeypatch.setattr(cli, "services", lambda: services)
    result = CliRunner().invoke(cli.main, ["board-report", "--from", "soon", "--to", "later"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: --from: 'soon' is not a date (use 2026-12-01 or 01/12/2026); "
        "--to: 'later' is not a date (use 2026-12-01 or 01/12/2026)\n")
