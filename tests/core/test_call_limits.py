"""Call length and frequency limits (policy 4.6): pure rules, the decision, the register row."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callflow.call_limits import (
    NO_LIMITS,
    CallLimitError,
    CallLimits,
    LimitPeriod,
    calls_this_period,
    ends_at_limit,
    next_call_from,
    parse_frequency,
    parse_minutes,
    steps_for_call,
    time_closing_words,
    time_warning_words,
)
from callflow.call_state import CallState
from callflow.decision import EMERGENCY_DIGIT, Caller, Centre, Outcome, decide
from callflow.effects import CountCall, DialPool, EndAtTimeLimit, WarnOfTimeLimit
from callflow.register import Restriction, entry_row, read_entry

LONDON = ZoneInfo("Europe/London")
CENTRE = Centre.from_text(
    "Mon-Fri 09:00-17:00", LONDON, bank_holidays=frozenset({date(2026, 12, 25)}),
    emergency_number="+441632960999", written_contact="PO Box 1, Durham",
)
TUESDAY_10AM = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # GMT: London time is UTC
SID = "CA" + "1" * 32
ONE_A_DAY = CallLimits(1, LimitPeriod.DAY)
TWO_A_WEEK = CallLimits(2, LimitPeriod.WEEK)


def restriction(limits: CallLimits, **changes) -> Restriction:
    values = dict(entry_id=7, starts_on=date(2026, 11, 1), ends_on=date(2027, 5, 1),
                  written_only=False, call_windows="", designated_contact_id=None,
                  fallback_contact_id=None, call_limits=limits)
    values.update(changes)
    return Restriction(**values)


def caller(limits: CallLimits, recent=(), **changes) -> Caller:
    return Caller(call_sid=SID, number="+447700900123",
                  restriction=restriction(limits, **changes), recent_calls=tuple(recent))


@pytest.mark.parametrize(("text", "expected"), [
    ("", (None, LimitPeriod.DAY)),
    ("1 a day", (1, LimitPeriod.DAY)),
    ("2 per day", (2, LimitPeriod.DAY)),
    ("3 calls a week", (3, LimitPeriod.WEEK)),
    ("  1 Call Per  Week ", (1, LimitPeriod.WEEK)),
    ("5/day", (5, LimitPeriod.DAY)),
])
def test_a_frequency_limit_is_read_from_plain_words(text, expected):
    assert parse_frequency(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("often", "'often': write it as a number of calls a day or a week, for example 1 a day or "
              "3 a week"),
    ("2 a month", "'2 a month': write it as a number of calls a day or a week, for example 1 a "
                  "day or 3 a week"),
    ("0 a day", "0 calls: give a number between 1 and 50"),
    ("51 a week", "51 calls: give a number between 1 and 50"),
])
def test_a_frequency_limit_that_cannot_be_read_says_how_to_write_it(text, message):
    with pytest.raises(CallLimitError) as raised:
        parse_frequency(text)
    assert str(raised.value) == message


@pytest.mark.parametrize(("text", "expected"), [("", None), ("15", 15), ("20 minutes", 20),
                                                ("3", 3), ("240 mins", 240)])
def test_a_call_length_is_a_whole_number_of_minutes(text, expected):
    assert parse_minutes(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("a quarter of an hour", "'a quarter of an hour' is not a whole number of minutes"),
    ("2", "2 minutes: a call may last between 3 and 240 minutes"),
    ("241", "241 minutes: a call may last between 3 and 240 minutes"),
])
def test_a_call_length_that_cannot_be_used_is_refused_with_why(text, message):
    with pytest.raises(CallLimitError) as raised:
        parse_minutes(text)
    assert str(raised.value) == message


def test_limits_are_described_in_plain_words():
    assert CallLimits(1, LimitPeriod.DAY, 15).describe() == (
        "at most 1 call a day, calls of up to 15 minutes")
    assert TWO_A_WEEK.describe() == "at most 2 calls a week"
    assert NO_LIMITS.describe() == "" and not NO_LIMITS


def test_calls_are_counted_in_the_local_day():
    # London is on BST in June: 23:30 UTC on 1 June is already 2 June locally.
    now = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    recent = [datetime(2026, 6, 1, 22, 30, tzinfo=UTC),  # 23:30 on 1 June in London
              datetime(2026, 6, 1, 23, 30, tzinfo=UTC)]  # 00:30 on 2 June in London
    assert calls_this_period(recent, now, LONDON, LimitPeriod.DAY) == 1


def test_calls_are_counted_from_monday_in_a_week():
    thursday = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    recent = [datetime(2026, 11, 29, 12, 0, tzinfo=UTC),  # the Sunday before
              datetime(2026, 11, 30, 9, 0, tzinfo=UTC)]  # Monday
    assert calls_this_period(recent, thursday, LONDON, LimitPeriod.WEEK) == 1
    assert next_call_from(TWO_A_WEEK, recent, thursday, LONDON) is None
    over = [*recent, datetime(2026, 12, 2, 9, 0, tzinfo=UTC)]
    assert next_call_from(TWO_A_WEEK, over, thursday, LONDON) == datetime(
        2026, 12, 7, 0, 0, tzinfo=LONDON)


def test_without_a_frequency_limit_any_number_of_calls_is_taken():
    many = [TUESDAY_10AM - timedelta(minutes=m) for m in range(1, 30)]
    assert next_call_from(CallLimits(max_minutes=15), many, TUESDAY_10AM, LONDON) is None


def test_a_caller_over_their_daily_limit_hears_when_they_may_call_next_and_the_options():
    earlier = TUESDAY_10AM - timedelta(hours=1)
    decision = decide(caller(ONE_A_DAY, [earlier]), CENTRE, TUESDAY_10AM)
    assert decision.outcome is Outcome.OVER_CALL_LIMIT
    assert decision.message == (
        "Thank you for calling. As we agreed with you in writing, we take up to 1 call a day "
        "from you, and you have reached that today.",
        "You can call us again tomorrow at 9 a.m.",
        "You can also write to us at: PO Box 1, Durham",
    )
    assert decision.offer_emergency and not decision.connects
    assert decision.effects == () and decision.later == ()
    assert decision.reason == "register entry 7: over the agreed number of calls (policy 4.6)"


def test_the_next_call_is_the_first_opening_of_the_new_period():
    friday = datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    decision = decide(caller(ONE_A_DAY, [friday - timedelta(hours=1)]), CENTRE, friday)
    assert decision.message[1] == "You can call us again on Monday at 9 a.m."
    windows = decide(caller(ONE_A_DAY, [friday - timedelta(hours=1)],
                            call_windows="Tue,Thu 14:00-16:00; Fri 10:00-12:00"), CENTRE, friday)
    assert windows.message[1] == "You can call us again on Tuesday at 2 p.m."


def test_an_over_limit_caller_can_still_reach_the_emergency_line():
    decision = decide(caller(ONE_A_DAY, [TUESDAY_10AM - timedelta(hours=1)]), CENTRE,
                      TUESDAY_10AM, digits=EMERGENCY_DIGIT)
    assert decision.outcome is Outcome.EMERGENCY


def test_a_call_within_the_limit_is_counted_and_timed():
    limits = CallLimits(2, LimitPeriod.DAY, 15)
    decision = decide(caller(limits, [TUESDAY_10AM - timedelta(hours=1)]), CENTRE, TUESDAY_10AM)
    assert decision.outcome is Outcome.WITHIN_WINDOW
    assert decision.effects == (DialPool(0),)
    assert [(s.effect, s.key, s.delay_seconds) for s in decision.later] == [
        (CountCall(7, TUESDAY_10AM.isoformat()), "count-call", 0),
        (WarnOfTimeLimit(15), "time-warning", 13 * 60),
        (EndAtTimeLimit(15), "time-end", 15 * 60),
    ]


def test_steps_follow_only_the_limits_set():
    assert steps_for_call(NO_LIMITS, 7, TUESDAY_10AM) == ()
    (warn, end) = steps_for_call(CallLimits(max_minutes=3), 7, TUESDAY_10AM)
    assert (warn.delay_seconds, end.delay_seconds) == (60, 180)


def test_a_caller_not_put_through_gets_no_timed_steps():
    outside = decide(caller(CallLimits(max_minutes=15), call_windows="Thu 10:00-12:00"),
                     CENTRE, TUESDAY_10AM)
    assert outside.outcome is Outcome.OUTSIDE_WINDOW and outside.later == ()


def test_the_caller_hears_plain_warning_and_closing_words():
    assert time_warning_words(15) == (
        "This call will end in about two minutes: as we agreed with you in writing, your calls "
        "last up to 15 minutes.",
        "Please use the time left to tell us anything else you need.")
    assert time_closing_words("PO Box 1, Durham") == (
        "We have now reached the length of call we agreed with you in writing, so we are ending "
        "this call. Thank you for calling.",
        "You can also write to us at: PO Box 1, Durham",
        "Goodbye.")


def test_limits_survive_the_routing_cache_and_older_cache_values():
    limited = restriction(CallLimits(1, LimitPeriod.WEEK, 20))
    assert Restriction.from_cache(limited.to_cache()) == limited
    plain = restriction(NO_LIMITS)
    assert "cl" not in plain.to_cache()
    assert Restriction.from_cache(plain.to_cache()).call_limits == NO_LIMITS


ROW = {
    "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
    "categories": "unreasonable_persistence", "reason": "Daily repeated calls",
    "decided_by": "manager@example.org", "decided_on": "2026-11-01",
    "starts_on": "2026-11-01", "ends_on": "2027-04-30",
}


def test_limits_round_trip_through_the_register_row():
    fields, errors = read_entry({**ROW, "call_frequency": "2 calls per week",
                                 "max_call_minutes": "15"})
    assert [e for e in errors if e.field in ("call_frequency", "max_call_minutes")] == []
    assert fields.call_limits == CallLimits(2, LimitPeriod.WEEK, 15)
    row = entry_row(fields)
    assert (row["call_frequency"], row["max_call_minutes"]) == ("2 a week", "15")
    again, _ = read_entry(row)
    assert again.call_limits == fields.call_limits


def test_bad_limits_are_reported_together_by_field():
    _fields, errors = read_entry({**ROW, "call_frequency": "lots", "max_call_minutes": "1"})
    found = {e.field: e.message for e in errors
             if e.field in ("call_frequency", "max_call_minutes")}
    assert found == {
        "call_frequency": "'lots': write it as a number of calls a day or a week, for example "
                          "1 a day or 3 a week",
        "max_call_minutes": "1 minute: a call may last between 3 and 240 minutes",
    }


@pytest.mark.parametrize(("state", "ended"), [
    (CallState.WAITING, True), (CallState.RINGING, True), (CallState.CONNECTED, True),
    (CallState.EMERGENCY, False), (CallState.VOICEMAIL, False), (CallState.MESSAGE, False),
    (CallState.ENDED, False), (None, False),
])
def test_only_a_call_with_or_waiting_for_a_person_is_ended_at_the_limit(state, ended):
    assert ends_at_limit(state) is ended
