"""The board's oversight report: every figure counted from plain facts, pure."""

from datetime import date

import pytest

from callflow.board_report import (
    AppealFacts,
    Arrangement,
    CallFacts,
    ChangeFacts,
    Duration,
    EntryFacts,
    PeriodError,
    ReportPeriod,
    ReviewFacts,
    build_report,
    check_period,
    duration_band,
    previous_month,
)

NOVEMBER = ReportPeriod(date(2026, 11, 1), date(2026, 11, 30))
TODAY = date(2026, 12, 1)


def figures(report, key):
    table = next(t for s in report.sections for t in s.tables if t.key == key)
    return {f.label: f.count for f in table.figures}


def report_of(entries=(), changes=(), reviews=(), appeals=(), calls=()):
    return build_report(NOVEMBER, TODAY, entries, changes, reviews, appeals, calls)


def entry(entry_id, starts, ends, lifted=None, review=None, categories=("aggressive_abusive",),
          arrangements=(Arrangement.WRITTEN_ONLY,)):
    return EntryFacts(entry_id, categories, arrangements, starts, ends, lifted, review)


@pytest.mark.parametrize(("starts", "ends", "band"), [
    (date(2026, 1, 1), date(2026, 3, 31), Duration.UP_TO_3_MONTHS),
    (date(2026, 1, 1), date(2026, 6, 30), Duration.UP_TO_6_MONTHS),
    (date(2026, 1, 1), date(2026, 12, 31), Duration.UP_TO_12_MONTHS),
    (date(2026, 1, 1), date(2027, 1, 1), Duration.OVER_12_MONTHS),
])
def test_a_restriction_s_length_falls_in_one_band(starts, ends, band):
    assert duration_band(starts, ends) is band


def test_restrictions_in_force_on_any_day_of_the_period_are_counted_by_kind():
    report = report_of(entries=[
        entry(1, date(2026, 10, 1), date(2027, 3, 31),
              categories=("aggressive_abusive", "unreasonable_demands"),
              arrangements=(Arrangement.WRITTEN_ONLY,)),
        entry(2, date(2026, 11, 30), date(2027, 1, 31), categories=("unreasonable_persistence",),
              arrangements=(Arrangement.CALL_WINDOWS, Arrangement.CALL_LIMITS)),
        entry(3, date(2026, 1, 1), date(2026, 10, 31)),  # over before November
        entry(4, date(2026, 1, 1), date(2027, 1, 31), lifted=date(2026, 11, 1)),  # lifted at once
        entry(5, date(2026, 12, 1), date(2027, 1, 31)),  # not yet started
    ])
    assert figures(report, "categories") == {
        "Aggressive, abusive or intimidating behaviour (3.1)": 1,
        "Unreasonable demands (3.2)": 1,
        "Unreasonable persistence (3.3)": 1,
    }
    assert figures(report, "arrangements") == {
        "Written contact only (4.2)": 1, "Calls at set times (4.6)": 1,
        "A designated point of contact (4.6)": 0, "Visits by appointment (4.6)": 0,
        "Call length or frequency limits (4.6)": 1,
    }
    assert figures(report, "durations") == {"Up to 3 months": 1, "3 to 6 months": 1,
                                            "6 to 12 months": 0, "More than 12 months": 0}
    assert report.sections[0].intro.startswith("2 restrictions applied")
    one = report_of(entries=[entry(1, date(2026, 10, 1), date(2027, 3, 31))])
    assert one.sections[0].intro.startswith("1 restriction applied on at least one day")


def test_new_varied_lifted_and_lapsed_are_counted_once_per_restriction():
    changes = [
        ChangeFacts(1, "created", date(2026, 11, 2)),
        ChangeFacts(1, "updated", date(2026, 11, 3), ("call_windows",)),
        ChangeFacts(1, "updated", date(2026, 11, 4), ("call_windows", "staff_notes")),
        ChangeFacts(2, "updated", date(2026, 11, 5), ("staff_notes",)),  # not an arrangement
        ChangeFacts(3, "lifted", date(2026, 11, 6)),
        ChangeFacts(4, "created", date(2026, 10, 31)),  # before the period
        ChangeFacts(6, "lapsed_unreviewed", date(2026, 11, 20)),
    ]
    entries = [
        entry(7, date(2026, 1, 1), date(2026, 11, 10)),  # lapses on 11 November
        entry(8, date(2026, 1, 1), date(2026, 11, 30)),  # lapses on 1 December: not yet
        entry(9, date(2026, 1, 1), date(2026, 11, 15), lifted=date(2026, 11, 12)),  # lifted
        entry(10, date(2026, 1, 1), date(2026, 10, 31)),  # lapsed on 1 November
    ]
    assert figures(report_of(entries, changes), "changes") == {
        "New restrictions": 1, "Arrangements varied": 1, "Lifted early": 1,
        "Lapsed at their end date": 2,
        "Lapsed because they were not reviewed in time": 1,
    }


def test_reviews_are_on_time_late_or_overdue():
    reviews = [
        ReviewFacts(date(2026, 11, 10), date(2026, 11, 10), "continue"),
        ReviewFacts(date(2026, 11, 12), date(2026, 11, 5), "vary"),
        ReviewFacts(date(2026, 10, 12), date(2026, 10, 5), "lift"),  # before the period
    ]
    entries = [
        entry(1, date(2026, 6, 1), date(2027, 6, 1), review=date(2026, 11, 20)),  # overdue
        entry(2, date(2026, 6, 1), date(2027, 6, 1), review=date(2026, 12, 20)),
        entry(3, date(2026, 6, 1), date(2027, 6, 1), review=date(2026, 11, 1),
              lifted=date(2026, 11, 15)),  # lifted: nothing to review
    ]
    report = report_of(entries, reviews=reviews)
    assert figures(report, "review_timeliness") == {
        "On time": 1, "Late": 1, "Overdue and not yet done on the last day of the period": 1}
    assert figures(report, "review_outcomes") == {
        "Continued, with a new review date": 1, "Arrangements varied": 1, "Lifted": 0}


def test_appeals_received_decided_and_late():
    appeals = [
        AppealFacts(date(2026, 11, 2), date(2026, 11, 30), date(2026, 11, 20), "upheld"),
        AppealFacts(date(2026, 11, 3), date(2026, 12, 1), date(2026, 11, 21), "quashed"),
        AppealFacts(date(2026, 10, 3), date(2026, 10, 31), date(2026, 11, 4), "varied"),
        AppealFacts(date(2026, 10, 10), date(2026, 11, 7)),  # undecided, past its date
        AppealFacts(date(2026, 11, 25), date(2026, 12, 23)),  # undecided, not yet due
    ]
    report = report_of(appeals=appeals)
    assert figures(report, "appeals_received") == {
        "Received in the period": 3,
        "Decided in the period, but after their due date": 1,
        "Not decided by their due date, on the last day of the period": 1}
    assert figures(report, "appeal_outcomes") == {
        "Upheld: the restriction stands": 1, "Varied: the arrangements changed": 1,
        "Quashed: the restriction was lifted": 1}


def test_calls_warned_and_ended_are_counted_by_reason():
    calls = [
        CallFacts(None, "centre", warned=True, end_reason="aggressive_abusive"),
        CallFacts(None, "centre", warned=False, end_reason="threat_or_violence"),
        CallFacts(1, "within_window", time_warned=True, end_reason="call_length_limit"),
        CallFacts(1, "within_window", warned=True, end_reason=""),
        CallFacts(None, "centre", warned=True),
    ]
    report = report_of(calls=calls)
    assert figures(report, "warnings") == {
        "Calls where the caller was warned about their behaviour": 3,
        "Calls where the caller was told the agreed call length was nearly up": 1}
    assert figures(report, "ended") == {
        "Aggressive, abusive or intimidating behaviour (3.1)": 1,
        "Unreasonable demands (3.2)": 0, "Unreasonable persistence (3.3)": 0,
        "Threat or violence (4.3)": 1,
        "The agreed call length was reached (4.6)": 1,
        "No reason recorded yet": 1}


def test_repeated_contact_counts_people_on_the_register_and_what_happened():
    calls = ([CallFacts(1, "outside_window")] * 4 + [CallFacts(1, "within_window")]
             + [CallFacts(2, "over_call_limit")] * 2 + [CallFacts(None, "centre")] * 9)
    report = report_of(calls=calls)
    assert figures(report, "contact") == {
        "Calls from people on the register": 7,
        "People on the register who called": 2,
        "People who called 5 or more times": 1}
    assert figures(report, "contact_outcomes") == {
        "Outside their agreed call times": 4, "Asked to write instead": 0,
        "Over their agreed number of calls": 2,
        "Put through within their arrangements": 1,
        "Put through to their designated contact": 0}


def test_every_figure_becomes_one_csv_row():
    report = report_of()
    rows = report.rows()
    assert rows[0] == ("Restrictions in force", "By behaviour (policy section 3)",
                       "Aggressive, abusive or intimidating behaviour (3.1)", 0)
    assert len(rows) == sum(len(t.figures) for s in report.sections for t in s.tables)


def test_a_period_is_checked_with_every_problem_at_once():
    with pytest.raises(PeriodError) as missing:
        check_period(None, None)
    assert missing.value.errors == (("from", "Give the first day of the period"),
                                    ("to", "Give the last day of the period"))
    with pytest.raises(PeriodError) as backwards:
        check_period(date(2026, 11, 30), date(2026, 11, 1))
    assert backwards.value.errors == (("to", "The last day must be on or after the first day"),)
    with pytest.raises(PeriodError) as long:
        check_period(date(2020, 1, 1), date(2026, 1, 1))
    assert long.value.errors == (("to", "The period must be 1098 days or shorter"),)
    assert check_period(date(2026, 11, 1), date(2026, 11, 1)).days == 1


def test_the_default_period_is_the_last_whole_month():
    assert previous_month(date(2026, 12, 1)) == NOVEMBER
    assert previous_month(date(2026, 1, 15)) == ReportPeriod(date(2025, 12, 1),
                                                             date(2025, 12, 31))
