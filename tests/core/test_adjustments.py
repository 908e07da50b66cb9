"""Reasonable adjustments and representatives: their written forms, the written-only rule, and
how a representative's call is decided, as pure functions."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from callflow.adjustments import (
    Adjustment,
    Need,
    adjustments_text,
    parse_adjustments,
    wants_large_print,
    written_only_problem,
)
from callflow.decision import Caller, Centre, Outcome, decide
from callflow.register import Restriction, check_entry, entry_row, parse_entry, read_entry
from callflow.representatives import (
    Representative,
    parse_representatives,
    representative_for,
    representative_of,
    representatives_text,
)

LONDON = ZoneInfo("Europe/London")
CENTRE = Centre.from_text("Mon-Fri 08:00-18:00", LONDON, emergency_number="+441632960999",
                          written_contact="PO Box 1, Durham")
TUESDAY_10AM = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ROLES = {"manager@example.org": "manager"}


def row(**changes: str) -> dict[str, str]:
    values = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-05-31", "review_on": "2027-03-01",
    }
    values.update(changes)
    return values


def problems(**changes: str) -> list[tuple[str, str]]:
    fields, errors = read_entry(row(**changes))
    errors += check_entry(fields, ROLES, {}, {e.field for e in errors})
    return [(e.field, e.message) for e in errors]


def test_needs_are_read_by_code_or_by_name_with_their_words():
    found, errors = parse_adjustments(
        "large print; Interpreter: Polish; BSL; relay_uk; other: extra time to answer")
    assert errors == []
    assert found == (Adjustment(Need.LARGE_PRINT), Adjustment(Need.INTERPRETER, "Polish"),
                     Adjustment(Need.BSL), Adjustment(Need.RELAY_UK),
                     Adjustment(Need.OTHER, "extra time to answer"))
    assert adjustments_text(found) == ("Large print; Interpreter: Polish; British Sign Language;"
                                       " Relay UK text relay; Other: extra time to answer")
    assert parse_adjustments(adjustments_text(found)) == (found, [])
    assert [a.label for a in found] == ["Large print", "Interpreter: Polish",
                                       "British Sign Language", "Relay UK text relay",
                                       "Other: extra time to answer"]


def test_every_bad_need_is_reported_at_once():
    found, errors = parse_adjustments("braille; interpreter; other:  ; large_print")
    assert found == (Adjustment(Need.LARGE_PRINT),)
    assert errors == [
        "'braille' is not a need we record; use one of Large print, Easy read, "
        "British Sign Language, Relay UK text relay, Interpreter, Help with writing, Other",
        "Interpreter: say which language, for example Interpreter: Polish",
        "Other: say what is needed, for example Other: extra time to answer",
    ]


def test_large_print_is_wanted_only_when_asked_for():
    assert wants_large_print((Adjustment(Need.EASY_READ), Adjustment(Need.LARGE_PRINT)))
    assert not wants_large_print((Adjustment(Need.EASY_READ),))


@pytest.mark.parametrize(("written_only", "needs", "exception", "refused"), [
    (True, (Adjustment(Need.HELP_WITH_WRITING),), "", True),
    (True, (Adjustment(Need.EASY_READ),), "", True),
    (True, (Adjustment(Need.HELP_WITH_WRITING),), "Their advocate writes for them", False),
    (True, (Adjustment(Need.LARGE_PRINT),), "", False),
    (False, (Adjustment(Need.HELP_WITH_WRITING),), "", False),
])
def test_written_only_is_refused_when_writing_is_a_barrier_unless_the_manager_says_why(
        written_only, needs, exception, refused):
    assert (written_only_problem(written_only, needs, exception) is not None) is refused


def test_the_register_refuses_written_only_for_someone_who_needs_help_with_writing():
    assert problems(adjustments="help_with_writing") == [(
        "written_only_exception",
        "written contact only was chosen but the person needs help with writing, so writing "
        "may be a barrier: choose call times or a designated contact instead, or say here why "
        "written contact only is still right and what replaces it (for example an advocate "
        "who writes for them)")]
    assert problems(adjustments="help_with_writing",
                    written_only_exception="Their advocate Jo writes and reads for them") == []


def test_representatives_are_read_and_written_back_the_same():
    found, errors = parse_representatives(
        "Jo Bloggs | advocate | 07700 900456, 01632 960001 | covered; "
        "Sam Example | daughter | 07700900789 | not covered")
    assert errors == []
    assert found == (
        Representative("Jo Bloggs", "advocate", ("+447700900456", "+441632960001"), True),
        Representative("Sam Example", "daughter", ("+447700900789",), False))
    assert parse_representatives(representatives_text(found)) == (found, [])
    assert representative_for(found, "+447700900789") == found[1]
    assert representative_for(found, "+447700900123") is None
    assert representative_of("Pat Example", "QL-1") == "representative of Pat Example"
    assert representative_of("", "QL-1") == "representative of QL-1"


def test_every_bad_representative_is_reported_at_once_with_which_one():
    found, errors = parse_representatives(
        "Jo | | 123 | maybe; Sam Example | son; | friend | 07700900789 | covered")
    assert found == ()
    assert errors == [
        "representative 1 (Jo): say how they are related to the person, for example "
        "advocate, daughter or councillor",
        "representative 1 (Jo): '123' cannot be a real number",
        "representative 1 (Jo): 'maybe': write covered or not covered",
        "representative 2 ('Sam Example'): write it as Name | relationship | numbers "
        "separated by commas | covered or not covered",
        "representative 3: the name is required",
    ]


def test_a_representative_may_not_use_the_persons_own_number_or_another_entrys():
    assert problems(representatives="Jo | advocate | 07700 900123 | covered") == [
        ("representatives", "Jo: +447700900123 is also one of the person's own numbers; a "
                            "number belongs to one of them")]
    fields, _ = read_entry(row(representatives="Jo | advocate | 07700 900456 | covered"))
    assert [e.message for e in check_entry(fields, ROLES, {"+447700900456": "QL-9"})] == [
        "+447700900456 is the number of active entry QL-9"]


def test_the_csv_row_carries_needs_and_representatives_both_ways():
    fields, errors = parse_entry(row(
        adjustments="large_print; interpreter: Polish",
        representatives="Jo Bloggs | advocate | 07700 900456 | covered"))
    assert errors == []
    written = entry_row(fields)
    assert (written["adjustments"], written["representatives"],
            written["written_only_exception"]) == (
        "Large print; Interpreter: Polish", "Jo Bloggs | advocate | +447700900456 | covered", "")
    assert parse_entry(written) == (fields, [])


def restriction(**changes) -> Restriction:
    values = dict(entry_id=7, starts_on=date(2026, 11, 1), ends_on=date(2027, 5, 1),
                  written_only=True, call_windows="", designated_contact_id=None,
                  fallback_contact_id=None)
    values.update(changes)
    return Restriction(**values)


def test_a_representatives_routing_value_survives_the_cache():
    for value in (restriction(), restriction(representative=True, covered=False),
                  restriction(representative=True, covered=True)):
        assert Restriction.from_cache(value.to_cache()) == value
    assert "rp" not in restriction().to_cache()


def test_an_uncovered_representative_goes_to_the_centre_as_normal():
    decision = decide(Caller("CA1", "+447700900456",
                             restriction=restriction(representative=True, covered=False)),
                      CENTRE, TUESDAY_10AM)
    assert (decision.outcome, decision.reason, decision.offer_emergency) == (
        Outcome.CENTRE, "a representative the restriction does not cover; routed as normal",
        False)
    assert decision.events[1].detail["entry_id"] == 7


def test_a_covered_representative_follows_the_arrangements():
    decision = decide(Caller("CA1", "+447700900456",
                             restriction=restriction(representative=True, covered=True)),
                      CENTRE, TUESDAY_10AM)
    assert decision.outcome is Outcome.WRITTEN_ONLY
