"""Triage of what restricted callers leave: due dates, overdue, and what an outcome needs."""

from datetime import date

import pytest

from callflow.triage import (
    TriageDecision,
    TriageOutcome,
    due_on,
    is_overdue,
    read_decision,
)


def test_an_item_is_due_the_set_number_of_days_after_it_came_in():
    assert due_on(date(2026, 12, 1), 5) == date(2026, 12, 6)
    assert due_on(date(2026, 12, 30), 3) == date(2027, 1, 2)


@pytest.mark.parametrize(("today", "handled", "overdue"), [
    (date(2026, 12, 6), False, False),  # due today: not yet late
    (date(2026, 12, 7), False, True),
    (date(2026, 12, 7), True, False),  # handled items are never overdue
])
def test_an_unhandled_item_is_overdue_the_day_after_it_was_due(today, handled, overdue):
    assert is_overdue(date(2026, 12, 6), today, handled) is overdue


def test_the_same_closed_issue_needs_no_notes():
    assert read_decision("same_closed_issue", "  ") == (
        TriageDecision(TriageOutcome.SAME_CLOSED_ISSUE, ""), [])


@pytest.mark.parametrize("outcome", ["new_information", "new_issue", "safeguarding"])
def test_an_outcome_that_needs_action_needs_a_word_on_what_was_done(outcome):
    chosen = TriageOutcome(outcome)
    assert read_decision(outcome, "") == (
        None, [("notes", f"say what was done about it ({chosen.label.lower()})")])
    assert read_decision(outcome, " Passed to the housing officer ") == (
        TriageDecision(chosen, "Passed to the housing officer"), [])


def test_every_problem_with_an_outcome_is_reported_at_once():
    assert read_decision("ignore", "x" * 4001) == (None, [
        ("outcome", "choose what the message was: new information about a closed issue, "
                    "a new, unrelated issue, a safeguarding concern, "
                    "the same closed issue, nothing new"),
        ("notes", "Notes must be 4000 characters or fewer"),
    ])
