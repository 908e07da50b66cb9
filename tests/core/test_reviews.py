"""The review rules: a review date always set and never too late, what a review may decide."""

from __future__ import annotations

from datetime import date

import pytest

from callflow.register import check_entry, parse_entry
from callflow.review_dates import add_months, latest_review_on, review_date_problem
from callflow.reviews import (
    ReviewDecision,
    ReviewOutcome,
    check_review,
    is_overdue,
    lapses_unreviewed,
)

ROLES = {"manager@example.org": "manager"}
TODAY = date(2026, 12, 1)


def row(**changes: str) -> dict[str, str]:
    values = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-11-30", "review_on": "2027-03-01",
    }
    values.update(changes)
    return values


def problems(**changes: str) -> list[tuple[str, str]]:
    fields, errors = parse_entry(row(**changes))
    if errors:
        return [(e.field, e.message) for e in errors]
    return [(e.field, e.message) for e in check_entry(fields, ROLES, {})]


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 11, 25), 6, date(2027, 5, 25)),
    (date(2026, 8, 31), 6, date(2027, 2, 28)),  # February is shorter
    (date(2027, 8, 31), 6, date(2028, 2, 29)),  # a leap year
    (date(2026, 12, 1), 1, date(2027, 1, 1)),
])
def test_months_are_added_to_the_same_day_or_the_months_last(day, months, expected):
    assert add_months(day, months) == expected


def test_a_review_date_within_six_months_of_the_start_is_accepted():
    assert problems(review_on="2027-05-25") == []


def test_a_review_date_more_than_six_months_after_the_start_is_refused_naming_the_field():
    assert problems(review_on="2027-05-26") == [
        ("review_on", "must be on or before 2027-05-25, at most 6 months after the start date")]


def test_a_blank_review_date_is_refused_naming_the_field():
    assert problems(review_on="") == [
        ("review_on", "is required: every restriction has a date by which it is reviewed")]


def test_a_lifted_entry_needs_no_review_date():
    assert problems(review_on="", lifted_at="2026-12-01T10:00:00+00:00",
                    lifted_by="manager@example.org", lifted_reason="Resolved") == []


def test_the_maximum_counts_from_the_last_review_when_there_was_one():
    fields, _ = parse_entry(row(starts_on="2026-01-05", decided_on="2026-01-01",
                                review_on="2027-04-01"))
    assert check_entry(fields, ROLES, {}, last_reviewed_on=date(2026, 11, 1)) == []
    assert [e.field for e in check_entry(fields, ROLES, {})] == ["review_on"]


def test_the_maximum_is_a_setting():
    fields, _ = parse_entry(row(review_on="2027-03-01"))
    assert [e.message for e in check_entry(fields, ROLES, {}, max_review_months=3)] == [
        "must be on or before 2027-02-25, at most 3 months after the start date"]


def test_the_latest_review_is_never_after_the_end():
    assert latest_review_on(date(2026, 11, 25), date(2027, 1, 31), 6) == date(2027, 1, 31)
    assert review_date_problem(date(2026, 11, 25), date(2027, 1, 31), None, 6) == (
        "is required: every restriction is reviewed at least every 6 months")


def decide(outcome: str, reasons: str = "Calls have reduced", nxt: date | None = None):
    return check_review(ReviewDecision(ReviewOutcome(outcome), reasons, nxt), TODAY,
                        date(2026, 6, 1), date(2027, 12, 31), 6)


def test_continuing_needs_reasons_and_a_next_review_within_the_maximum_from_today():
    assert decide("continue", nxt=date(2027, 6, 1)) == []
    assert [(e.field, e.message) for e in decide("continue", reasons=" ")] == [
        ("reasons", "say why you decided this"),
        ("review_on", "is required when the restriction continues")]
    assert [e.message for e in decide("continue", nxt=date(2027, 6, 2))] == [
        "must be on or before 2027-06-01, at most 6 months after the last review"]
    assert [e.message for e in decide("vary", nxt=TODAY)] == [
        "the next review must be after today"]
    assert [e.message for e in decide("continue", nxt=date(2028, 1, 1))] == [
        "must be on or before the end date, 2027-12-31"]


def test_lifting_needs_only_reasons():
    assert decide("lift") == []
    assert [e.field for e in decide("lift", reasons="")] == ["reasons"]


def test_a_review_date_passed_is_overdue():
    assert is_overdue(date(2026, 11, 30), TODAY)
    assert not is_overdue(TODAY, TODAY)
    assert not is_overdue(None, TODAY)


@pytest.mark.parametrize(("review_on", "after_days", "lapses"), [
    (date(2026, 11, 1), 0, False),   # off by default
    (date(2026, 11, 1), 30, False),  # 30 days later is the last day it may stand unreviewed
    (date(2026, 10, 31), 30, True),
    (None, 30, False),
])
def test_an_unreviewed_restriction_lapses_only_when_the_setting_says(review_on, after_days,
                                                                     lapses):
    assert lapses_unreviewed(review_on, TODAY, after_days) is lapses
