"""The appeal rules: what is recorded, who may decide (no one involved), and when it is late."""

from __future__ import annotations

from datetime import date

import pytest

from callflow.appeals import (
    AppealOutcome,
    Channel,
    decide_by,
    involvement_problem,
    is_late,
    read_decision,
    read_receipt,
)

TODAY = date(2026, 12, 1)


def test_a_receipt_reads_its_date_channel_and_grounds():
    receipt, errors = read_receipt(
        {"received_on": "2026-11-30", "channel": "Email", "grounds": "I was not abusive"}, TODAY)
    assert errors == []
    assert (receipt.received_on, receipt.channel, receipt.grounds) == (
        date(2026, 11, 30), Channel.EMAIL, "I was not abusive")


def test_every_problem_with_a_receipt_is_reported_at_once():
    _, errors = read_receipt({"received_on": "2026-12-02", "channel": "fax", "grounds": ""},
                             TODAY)
    assert [(e.field, e.message) for e in errors] == [
        ("received_on", "cannot be in the future"),
        ("channel", "choose letter, email or phone"),
        ("grounds", "say why the customer disagrees, in their words where you can"),
    ]


def test_an_appeal_is_due_28_days_after_receipt_and_late_after_that():
    assert decide_by(date(2026, 11, 1)) == date(2026, 11, 29)
    assert not is_late(date(2026, 11, 3), decided=False, today=TODAY)
    assert is_late(date(2026, 11, 2), decided=False, today=TODAY)
    assert not is_late(date(2026, 11, 2), decided=True, today=TODAY)
    assert is_late(date(2026, 11, 20), decided=False, today=TODAY, within_days=10)


@pytest.mark.parametrize(("decider", "role", "expected"), [
    ("other@example.org", "manager", None),
    ("boss@example.org", "manager",
     "boss@example.org decided this restriction; a manager who was not involved must decide "
     "the appeal"),
    ("reviewer@example.org", "manager",
     "reviewer@example.org carried out the last review of this restriction; a manager who was "
     "not involved must decide the appeal"),
    ("sam@example.org", "supervisor",
     "sam@example.org is not a manager; only a manager decides an appeal (policy 5.2)"),
    ("ghost@example.org", None,
     "ghost@example.org is not a manager; only a manager decides an appeal (policy 5.2)"),
])
def test_only_a_manager_not_involved_may_decide(decider, role, expected):
    assert involvement_problem(decider, role, "boss@example.org",
                               "reviewer@example.org") == expected


def test_a_decision_needs_an_outcome_and_reasons():
    decision, errors = read_decision({"outcome": "quashed", "reasons": "No evidence of abuse"})
    assert errors == [] and decision.outcome is AppealOutcome.QUASHED
    _, errors = read_decision({"outcome": "maybe", "reasons": ""})
    assert [e.field for e in errors] == ["outcome", "reasons"]
