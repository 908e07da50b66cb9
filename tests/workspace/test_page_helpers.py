"""The workspace's small pure helpers beside its views: reading forms, naming files, flags."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callflow.reviews import ReviewDecision, ReviewOutcome
from console.workspace.calls import (
    CSV_COLUMNS,
    csv_line,
    csv_record,
    filter_errors_text,
    query_string,
)
from console.workspace.dashboard import fortnight_charts, last_day_asked
from console.workspace.notices import pdf_filename
from console.workspace.register import read_review, review_due
from store.call_queries import CallRow
from tests.conftest import TODAY

LONDON = ZoneInfo("Europe/London")


def test_the_paging_links_keep_every_filter_typed_and_each_mark_ticked():
    values = {"from": "2026-12-01", "number": "", "mark": ["warned", "incident"], "agent": "4"}
    assert query_string(values) == "from=2026-12-01&mark=warned&mark=incident&agent=4"


def test_the_exports_errors_read_as_one_line_under_the_pages_labels():
    errors = {"to": ["must not be before the start date"], "number": ["is too long", "odd"]}
    assert filter_errors_text(errors) == (
        "To date: must not be before the start date; Number: is too long, odd")


def test_a_call_exports_in_the_columns_order_in_local_time_with_flags_as_yes_or_no():
    row = CallRow(
        id=1, call_sid="CA1", started_at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC), ended_at=None,
        from_number="+447700900123", withheld=False, decision="centre", lookup_failed=False,
        agent_id=None, agent_name="", customer_ref="QL-1", status="completed",
        duration_seconds=None, warned=True, ended_by_agent=False, incident=False,
        emergency=False, voicemail=True, recording_url=None)
    record = dict(zip(CSV_COLUMNS, csv_record(row, LONDON), strict=True))
    assert record["started"] == "2026-07-01T10:00:00+01:00" and record["ended"] == ""
    assert (record["warned"], record["ended_by_agent"], record["voicemail"]) == ("yes", "no", "yes")
    assert record["duration_seconds"] == ""


def test_a_cell_a_spreadsheet_would_run_is_exported_as_text():
    assert csv_line(["=SUM(A1)", "plain"]) == "'=SUM(A1),plain\r\n"


@pytest.mark.parametrize(("kind", "ref", "name"), [
    ("restriction", "QL-1", "restriction-notice-QL-1-7.pdf"),
    ("warning", "QL 1/../x", "warning-notice-QL_1_.._x-7.pdf"),
    ("warning", 'a"b', "warning-notice-a_b-7.pdf"),
])
def test_a_notices_file_name_carries_nothing_unsafe_in_a_file_name(kind, ref, name):
    assert pdf_filename(kind, ref, 7) == name


@pytest.mark.parametrize(("values", "found", "problems"), [
    ({"outcome": "continue", "reasons": "Still needed", "review_on": "2027-03-01"},
     ReviewDecision(ReviewOutcome.CONTINUE, "Still needed", date(2027, 3, 1)), []),
    ({"outcome": "vary", "reasons": "Calls are fine", "review_on": "01/03/2027"},
     ReviewDecision(ReviewOutcome.VARY, "Calls are fine", date(2027, 3, 1)), []),
    ({"outcome": "lift", "reasons": "Resolved", "review_on": ""},
     ReviewDecision(ReviewOutcome.LIFT, "Resolved", None), []),
    ({"outcome": "", "reasons": "", "review_on": "soon"}, None,
     [("outcome", "choose what the review decided"),
      ("review_on", "'soon' is not a date (use 2026-12-01 or 01/12/2026)"),
      ("reasons", "say why you decided this")]),
])
def test_the_review_form_reads_its_outcome_reasons_and_next_date(values, found, problems):
    decision, errors = read_review(values)
    assert decision == found
    assert [(e.field, e.message) for e in errors] == problems


@pytest.mark.parametrize(("status", "review_on", "due"), [
    ("active", TODAY + timedelta(days=14), True),
    ("upcoming", TODAY - timedelta(days=1), True),
    ("active", TODAY + timedelta(days=15), False),
    ("active", None, False),
    ("lapsed", TODAY, False),
    ("lifted", TODAY, False),
])
def test_a_review_is_due_for_a_live_entry_within_fourteen_days(status, review_on, due):
    assert review_due(status, review_on, TODAY) is due


def test_the_repeat_callers_page_ends_today_unless_asked_for_a_day_in_range():
    assert last_day_asked(None, TODAY) == TODAY
    assert last_day_asked("2026-11-20", TODAY) == date(2026, 11, 20)
    with pytest.raises(ValueError, match="between 2000 and 2999"):
        last_day_asked("1999-12-31", TODAY)
    with pytest.raises(ValueError, match="is not a date"):
        last_day_asked("yesterday", TODAY)


def test_the_leaders_chart_names_a_registered_number_by_its_reference():
    days = [TODAY]
    charts = fortnight_charts(days, {TODAY: {}}, {TODAY: {}}, [(1, "Alex", 2, 1)],
                              [("+447700900123", 5), ("+447700900999", 2)],
                              {"+447700900123": "QL-1"})
    assert [c.label for c in charts] == [
        "Calls per day by decision", "Warnings, calls ended by agents and incidents per day",
        "Warnings and calls ended, per agent (last 14 days)",
        "Repeated-contact leaders (last 7 days)"]
    leaders = charts[3]
    assert [b.title for b in leaders.bars] == [
        "07700 900123 (QL-1): On the register 5", "07700 900999: Not on the register 2"]
    assert [b.title for b in charts[2].bars] == ["Alex: Warnings 2", "Alex: Ended by agent 1"]
