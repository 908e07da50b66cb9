"""The register's rules: parsing fields and the policy's checks, with field-named messages."""

from datetime import date

import pytest

from callflow.register import (
    Category,
    Status,
    check_entry,
    entry_row,
    entry_status,
    parse_date,
    parse_entry,
    parse_flag,
    read_entry,
)

STAFF = {"manager@example.org": "manager", "alex@example.org": "agent",
         "jo@example.org": "agent", "sam@example.org": "supervisor"}


def row(**changes):
    base = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-12-01", "ends_on": "2027-06-01",
    }
    base.update(changes)
    return base


def problems(raw, holders=None):
    fields, errors = parse_entry(raw)
    if errors:
        return [str(e) for e in errors]
    return [str(e) for e in check_entry(fields, STAFF, holders or {})]


def test_a_complete_written_only_entry_passes():
    assert problems(row()) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"written_only": "no"}, "written_only: no form of contact is left (policy 4.1)"),
        ({"ends_on": "2026-12-01"}, "ends_on: must be after the start date"),
        ({"ends_on": ""}, "ends_on: is required"),
        ({"starts_on": "31/02/2026"}, "starts_on: '31/02/2026' is not a date"),
        ({"categories": "rude"}, "categories: 'rude' is not one of aggressive_abusive"),
        ({"phone_numbers": "12345"}, "phone_numbers: '12345' cannot be a real number"),
        ({"written_only": "maybe"}, "written_only: 'maybe' is not yes or no"),
        ({"written_only": "no", "call_windows": "Tue 12:00-10:00"}, "call_windows: window 1"),
        ({"call_windows": "Tue 10:00-12:00"}, "call_windows: cannot be set when contact is"),
        ({"written_only": "no", "designated_contact": "nobody@example.org"},
         "designated_contact: nobody@example.org is not a known staff member"),
        ({"decided_by": "alex@example.org"},
         "decided_by: alex@example.org is an agent, not a manager (policy 5.2)"),
        ({"written_only": "no", "designated_contact": "alex@example.org",
          "fallback": "alex@example.org"}, "fallback: must differ from the designated contact"),
        ({"fallback": "voicemail"}, "fallback: needs a designated contact"),
        ({"review_on": "2028-01-01"}, "review_on: must fall between the start and end dates"),
        ({"closed_issues": "no colon here"}, "closed_issues: 'no colon here': write it as"),
        ({"reason": "  "}, "reason: is required"),
    ],
)
def test_each_rule_is_refused_with_a_message_naming_the_field(changes, expected):
    found = problems(row(**changes))
    assert any(p.startswith(expected) for p in found), found


def test_a_number_on_another_active_entry_names_that_entry():
    found = problems(row(), holders={"+447700900123": "QL-9"})
    assert found == ["phone_numbers: +447700900123 already belongs to active entry QL-9"]


def test_the_same_entry_may_keep_its_own_numbers():
    assert problems(row(), holders={"+447700900123": "QL-1"}) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"written_only": "no", "call_windows": "Tue,Thu 10:00-12:00"},
        {"written_only": "no", "designated_contact": "alex@example.org"},
    ],
)
def test_a_phone_restriction_with_a_window_or_a_contact_keeps_a_form_of_contact(changes):
    assert problems(row(**changes)) == []


def test_a_designated_contact_without_a_fallback_falls_back_to_voicemail():
    fields, _ = parse_entry(row(written_only="no", designated_contact="Alex@Example.org"))
    assert fields.designated_contact == "alex@example.org"
    assert fields.fallback == "voicemail"


def test_every_error_in_a_row_is_reported_at_once():
    found = problems(row(name="", ends_on="soon", categories="", phone_numbers="1"))
    assert {p.split(":")[0] for p in found} == {"name", "ends_on", "categories", "phone_numbers"}


@pytest.mark.parametrize(("text", "value"), [("yes", True), ("NO", False), ("True", True),
                                             ("false", False), ("1", True), ("0", False)])
def test_flags_accept_yes_no_true_false_and_digits_in_any_case(text, value):
    assert parse_flag(text) is value


@pytest.mark.parametrize(("text", "value"), [("2026-12-01", date(2026, 12, 1)),
                                             ("01/12/2026", date(2026, 12, 1)),
                                             ("1/2/2027", date(2027, 2, 1))])
def test_dates_are_iso_or_uk_day_first(text, value):
    assert parse_date(text) == value


def test_a_row_round_trips_through_its_csv_form():
    fields, _ = parse_entry(row(
        written_only="no", phone_numbers="07700 900123; +44 191 496 0000",
        categories="unreasonable_persistence;aggressive_abusive",
        call_windows="thu 10:00-12:00; Tue 10:00-12:00", designated_contact="alex@example.org",
        closed_issues="CMP-1: Kitchen; CMP-2: Boiler", review_on="01/03/2027",
    ))
    again, errors = parse_entry(entry_row(fields))
    assert errors == [] and again == fields
    assert fields.categories == (Category.UNREASONABLE_PERSISTENCE, Category.AGGRESSIVE_ABUSIVE)
    assert fields.call_windows == "Tue 10:00-12:00; Thu 10:00-12:00"


@pytest.mark.parametrize(
    ("today", "lifted", "status"),
    [(date(2026, 11, 30), None, Status.UPCOMING), (date(2026, 12, 1), None, Status.ACTIVE),
     (date(2027, 6, 1), None, Status.ACTIVE), (date(2027, 6, 2), None, Status.LAPSED),
     (date(2026, 12, 5), object(), Status.LIFTED)],
)
def test_status_follows_the_dates_and_ends_on_is_the_last_day(today, lifted, status):
    assert entry_status(date(2026, 12, 1), date(2027, 6, 1), lifted, today) is status


@pytest.mark.parametrize("field", ["name", "reason", "customer_ref", "staff_notes"])
def test_a_null_character_in_any_field_is_a_field_error_not_a_database_error(field):
    _fields, errors = read_entry(row(**{field: "Pat\x00 Example"}))
    assert [e.field for e in errors] == [field]
    assert "cannot be typed or stored" in str(errors[0])


def test_a_date_out_of_range_is_a_field_error_not_a_traceback():
    _fields, errors = read_entry(row(lifted_at="9999-12-31T23:59:59-01:00",
                                     lifted_by="manager@example.org", lifted_reason="Reviewed"))
    assert [e.field for e in errors] == ["lifted_at"]
