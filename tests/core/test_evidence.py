"""The evidence rule (policy 5.1, 4.3) and the register's new columns, with no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from callflow.evidence import (
    Evidence,
    EvidenceCounts,
    EvidenceKind,
    evidence_problems,
    evidence_text,
    needs_evidence,
    parse_evidence,
)
from callflow.register import entry_row, parse_entry, read_entry

INCIDENT = Evidence(EvidenceKind.INCIDENT, "12")
CALL = Evidence(EvidenceKind.CALL, "CA" + "1" * 32)
LETTER = Evidence(EvidenceKind.WARNING_LETTER, "5")
WRITTEN = Evidence(EvidenceKind.WRITTEN, "letter of 3 May about the noise complaints")


def row(**changes: str) -> dict[str, str]:
    base = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-05-31", "review_on": "2027-03-01",
    }
    return {**base, **changes}


def test_each_kind_of_evidence_is_read_in_any_case_with_lines_or_semicolons():
    text = (f"Incident 12\ncall {CALL.reference}; warning letter 5\n"
            "written: letter of 3 May about the noise complaints\n\nincident 12")
    assert parse_evidence(text) == ((INCIDENT, CALL, LETTER, WRITTEN), [])


def test_evidence_written_out_reads_back_the_same():
    items = (INCIDENT, CALL, LETTER, WRITTEN)
    assert evidence_text(items) == (f"incident 12; call {CALL.reference}; warning letter 5; "
                                    "written: letter of 3 May about the noise complaints")
    assert parse_evidence(evidence_text(items)) == (items, [])


@pytest.mark.parametrize(("text", "message"), [
    ("letter of 3 May", '"letter of 3 May" is not evidence callflow can read: write it as '
                        '"incident 12", "call CA…" (its call reference), "warning letter 5", or '
                        '"written: letter of 3 May about the noise complaints"'),
    ("incident twelve", '"incident twelve": give the incident\'s number, such as '
                        '"incident 12"'),
    ("warning letter of May", '"warning letter of May": give the warning letter\'s number, '
                              'such as "warning letter 12"'),
])
def test_evidence_that_cannot_be_read_says_what_and_how_to_write_it(text, message):
    assert parse_evidence(text) == ((), [message])


def test_a_restriction_with_cited_evidence_after_a_warning_letter_passes():
    assert evidence_problems([INCIDENT, WRITTEN], {INCIDENT}, True, "") == []


def test_a_restriction_without_a_warning_letter_passes_when_it_says_why_not():
    assert evidence_problems([WRITTEN], set(), False, "Threatened to harm staff (4.3)") == []


def test_every_problem_with_the_evidence_is_reported_at_once():
    assert evidence_problems([], set(), False, "  ") == [
        ("evidence", "cite the evidence this restriction rests on (policy 5.1): at least one "
                     "incident, call, warning letter or written record, such as \"incident 12\", "
                     "\"call CA…\" (its call reference), \"warning letter 5\", or \"written: "
                     "letter of 3 May about the noise complaints\""),
        ("no_warning_reason", "no formal warning letter has been sent to this customer: send "
                              "one first to give them the chance to change (policy 5.1), or say "
                              "why not, for example threats or violence (policy 4.3)"),
    ]


def test_cited_incidents_calls_and_letters_must_be_linked_to_the_customer():
    problems = evidence_problems([INCIDENT, CALL, LETTER, WRITTEN], {CALL}, True, "")
    assert problems == [
        ("evidence", "incident 12 is not linked to this customer's numbers or reference"),
        ("evidence", "warning letter 5 is not linked to this customer's numbers or reference"),
    ]


@pytest.mark.parametrize(("creating", "lifted", "ended", "applies"), [
    (True, False, False, True),
    (False, False, False, False),  # an entry already on the register
    (True, True, False, False),  # an export of a lifted entry, imported again
    (True, False, True, False),  # a restriction that ended before today
])
def test_the_rule_applies_to_new_restrictions_in_force_or_to_come(creating, lifted, ended,
                                                                   applies):
    assert needs_evidence(creating, lifted, ended) is applies


@pytest.mark.parametrize(("counts", "text"), [
    (EvidenceCounts(), "no calls on which they were warned, no calls ended by staff, "
                       "no incidents, no warning letters"),
    (EvidenceCounts(1, 1, 1, 1), "1 call on which they were warned, 1 call ended by staff, "
                                 "1 incident, 1 warning letter"),
    (EvidenceCounts(2, 3, 4, 5), "2 calls on which they were warned, 3 calls ended by staff, "
                                 "4 incidents, 5 warning letters"),
])
def test_counts_read_as_words(counts, text):
    assert counts.text == text


def test_the_new_columns_round_trip_through_a_register_row():
    fields, errors = parse_entry(row(
        postal_address="  Flat 2\r\n 10 High Street \r\n\r\nNorthfield NF1 2AB ",
        evidence=f"incident 12; written: {WRITTEN.reference}",
        no_warning_reason="Threats to staff", not_told_reason="Risk of harm if told"))
    assert errors == []
    assert fields.postal_address == "Flat 2\n10 High Street\nNorthfield NF1 2AB"
    assert fields.evidence == (INCIDENT, WRITTEN)
    assert (fields.no_warning_reason, fields.not_told_reason) == (
        "Threats to staff", "Risk of harm if told")
    again, errors = parse_entry(entry_row(fields))
    assert errors == [] and again == fields


def test_bad_evidence_is_named_with_the_other_problems_of_the_row():
    _fields, errors = read_entry(row(evidence="the usual", name="", postal_address="x" * 1001))
    assert sorted((e.field, e.message.split(":")[0]) for e in errors) == [
        ("evidence", '"the usual" is not evidence callflow can read'),
        ("name", "is required"),
        ("postal_address", "Postal address must be 1000 characters or fewer"),
    ]


def test_an_entry_without_the_new_columns_reads_as_before():
    fields, errors = parse_entry(row())
    assert errors == []
    assert replace(fields) == fields
    assert (fields.postal_address, fields.evidence, fields.no_warning_reason,
            fields.not_told_reason) == ("", (), "", "")
