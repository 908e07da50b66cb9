import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callflow.schedule import (
    DAY_ABBREVIATIONS,
    DAY_NAMES,
    Opening,
    ScheduleError,
    WeeklySchedule,
    Window,
    current_opening,
    next_opening,
    parse_schedule,
)

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = frozenset(range(5))
CHRISTMAS_CLOSURES = frozenset({date(2026, 12, 25), date(2026, 12, 28)})


def london(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=LONDON, fold=fold)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def windows(text: str) -> set[tuple[frozenset[int], int, int]]:
    return {(w.days, w.start_minute, w.end_minute) for w in parse_schedule(text).windows}


# --- syntax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue 10:00-12:00", {(frozenset({1}), 600, 720)}),
        ("tuesday 10:00-12:00", {(frozenset({1}), 600, 720)}),
        ("TUESDAY 10:00-12:00", {(frozenset({1}), 600, 720)}),
        ("TUE 10:00-12:00", {(frozenset({1}), 600, 720)}),
        ("Mon-Fri 14:00-15:30", {(WEEKDAYS, 840, 930)}),
        ("Sat-Sun 09:00-13:00", {(frozenset({5, 6}), 540, 780)}),
        ("Fri-Mon 09:00-17:00", {(frozenset({4, 5, 6, 0}), 540, 1020)}),
        ("Sun-Sat 09:00-17:00", {(frozenset(range(7)), 540, 1020)}),
        ("Wed-Wed 09:00-17:00", {(frozenset({2}), 540, 1020)}),
        ("Tue,Thu 10:00-12:00", {(frozenset({1, 3}), 600, 720)}),
        ("monday,Wednesday-FRI 10:00-12:00", {(frozenset({0, 2, 3, 4}), 600, 720)}),
        ("  mon - fri ,  sun   14:00 -  15:30  ", {(WEEKDAYS | {6}, 840, 930)}),
        ("Mon10:00-12:00", {(frozenset({0}), 600, 720)}),
        ("Mon 9:05-12:00", {(frozenset({0}), 545, 720)}),
        ("Mon-Sun 00:00-24:00", {(frozenset(range(7)), 0, 1440)}),
        (
            "Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30",
            {(frozenset({1, 3}), 600, 720), (WEEKDAYS, 840, 930)},
        ),
        (
            "Mon 10:00-12:00;\n\tTue 10:00-12:00\n",
            {(frozenset({0}), 600, 720), (frozenset({1}), 600, 720)},
        ),
    ],
)
def test_schedule_syntax_form_parses_to_its_windows(text, expected):
    assert windows(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no windows given"),
        ("  \n\t ", "no windows given"),
        (
            "Tue,Thu 10:00-12:00; Mon-Fry 14:00-15:30",
            'window 2 ("Mon-Fry 14:00-15:30"): unknown day "Fry"',
        ),
        ("Tues 10:00-12:00", 'window 1 ("Tues 10:00-12:00"): unknown day "Tues"'),
        (
            "Mon Tue 10:00-12:00",
            'window 1 ("Mon Tue 10:00-12:00"): unknown day "Mon Tue" (separate days with commas)',
        ),
        (
            "Mon,,Tue 10:00-12:00",
            'window 1 ("Mon,,Tue 10:00-12:00"): empty day in "Mon,,Tue" (stray ","?)',
        ),
        ("Mon, 10:00-12:00", 'window 1 ("Mon, 10:00-12:00"): empty day in "Mon," (stray ","?)'),
        (
            "Tue 12:00-10:00",
            'window 1 ("Tue 12:00-10:00"): ends before it starts (overnight windows are not '
            'supported; split at midnight, e.g. "Fri 22:00-24:00; Sat 00:00-02:00")',
        ),
        (
            "Tue 10:00-10:00",
            'window 1 ("Tue 10:00-10:00"): starts and ends at 10:00, so never open',
        ),
        (
            "Tue 10:00-25:00",
            'window 1 ("Tue 10:00-25:00"): "25:00" is not a time (use 24-hour HH:MM)',
        ),
        (
            "Tue 10:60-11:00",
            'window 1 ("Tue 10:60-11:00"): "10:60" is not a time (use 24-hour HH:MM)',
        ),
        (
            "Tue 10:00-24:30",
            'window 1 ("Tue 10:00-24:30"): "24:30" is not a time (use 24-hour HH:MM)',
        ),
        ("Tue 10-12", 'window 1 ("Tue 10-12"): "10" is not a time (use 24-hour HH:MM)'),
        (
            "Mon-Fri 1O:00-12:00",
            'window 1 ("Mon-Fri 1O:00-12:00"): "1O:00" is not a time (use 24-hour HH:MM)',
        ),
        (
            "Mon 10:00-12:00 Tue",
            'window 1 ("Mon 10:00-12:00 Tue"): "12:00 Tue" is not a time (use 24-hour HH:MM)',
        ),
        (
            "Mon 24:00-24:00",
            'window 1 ("Mon 24:00-24:00"): "24:00" can only end a window (start at 00:00)',
        ),
        (
            "Tue 10:00",
            'window 1 ("Tue 10:00"): "10:00" is not a time range (use HH:MM-HH:MM)',
        ),
        (
            "Tue 10:00-",
            'window 1 ("Tue 10:00-"): "10:00-" is not a time range (use HH:MM-HH:MM)',
        ),
        (
            "Tue 10:00-11:00-12:00",
            'window 1 ("Tue 10:00-11:00-12:00"): "10:00-11:00-12:00" is not a time range '
            "(use HH:MM-HH:MM)",
        ),
        ("Mon-Fri", 'window 1 ("Mon-Fri"): no time range (expected e.g. "10:00-12:00")'),
        (
            "10:00-12:00",
            'window 1 ("10:00-12:00"): no days before the times (expected e.g. "Mon-Fri")',
        ),
        (
            "Mon 10:00-12:00;",
            'window 2 (""): empty window (is there a stray ";"?)',
        ),
        (
            "Mon 10:00-12:00; ; Tue 10:00-12:00",
            'window 2 (""): empty window (is there a stray ";"?)',
        ),
    ],
)
def test_bad_schedule_text_is_rejected_with_a_message_naming_window_and_token(text, message):
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule(text)
    assert str(excinfo.value) == message


def test_schedule_error_is_a_value_error():
    assert issubclass(ScheduleError, ValueError)


def test_parsing_the_same_text_twice_returns_the_cached_schedule():
    assert parse_schedule("Mon 10:00-12:00") is parse_schedule("Mon 10:00-12:00")


def test_window_order_and_duplicates_do_not_change_the_schedule():
    assert parse_schedule("Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30") == parse_schedule(
        "Mon-Fri 14:00-15:30; Thu,Tue 10:00-12:00; tuesday,THURSDAY 10:00-12:00"
    )


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        (lambda: Window(frozenset(), 600, 720), "non-empty subset"),
        (lambda: Window(frozenset({7}), 600, 720), "non-empty subset"),
        (lambda: Window(frozenset({0}), 720, 600), "start_minute < end_minute"),
        (lambda: Window(frozenset({0}), 0, 1441), "start_minute < end_minute"),
        (lambda: WeeklySchedule(()), "at least one window"),
        (lambda: Opening(datetime(2026, 6, 1, 10), london(2026, 6, 1, 12)), "aware"),
        (lambda: Opening(london(2026, 6, 1, 12), london(2026, 6, 1, 12)), "start before"),
    ],
)
def test_values_built_directly_are_validated(window, problem):
    with pytest.raises(ValueError, match=problem):
        window()


# --- canonical text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30", "Mon-Fri 14:00-15:30; Tue,Thu 10:00-12:00"),
        ("monday,TUESDAY,wed,Thu,friday 8:00-18:00", "Mon-Fri 08:00-18:00"),
        ("friday-monday 9:00-17:00", "Mon,Fri-Sun 09:00-17:00"),
        ("Sat,Sun,Mon,Wed 07:00-07:30", "Mon,Wed,Sat-Sun 07:00-07:30"),
        ("Tue-Wed 10:00-11:00", "Tue-Wed 10:00-11:00"),
        ("sun-sat 00:00-24:00", "Mon-Sun 00:00-24:00"),
        ("Mon 10:00-12:00; mon 10:00-12:00", "Mon 10:00-12:00"),
        (
            "Mon 14:00-15:00; Mon 09:00-10:00; Sun 08:00-09:00",
            "Mon 09:00-10:00; Mon 14:00-15:00; Sun 08:00-09:00",
        ),
    ],
)
def test_canonical_text_collapses_days_and_parses_back_to_an_equal_schedule(text, canonical):
    schedule = parse_schedule(text)
    assert str(schedule) == canonical
    assert parse_schedule(canonical) == schedule


def _random_day_spec(rng: random.Random) -> tuple[str, frozenset[int]]:
    def name(day: int) -> str:
        spelled = rng.choice((DAY_NAMES, DAY_ABBREVIATIONS))[day]
        return rng.choice((spelled, spelled.lower(), spelled.upper()))

    items, days = [], set()
    for _ in range(rng.randint(1, 3)):
        first = rng.randrange(7)
        if rng.random() < 0.5:
            items.append(name(first))
            days.add(first)
        else:
            length = rng.randrange(7)
            items.append(f"{name(first)}{rng.choice(('-', ' - '))}{name((first + length) % 7)}")
            days.update((first + step) % 7 for step in range(length + 1))
    return rng.choice((",", ", ", " ,")).join(items), frozenset(days)


def _random_time(rng: random.Random, minute: int) -> str:
    hours, minutes = divmod(minute, 60)
    return f"{hours}:{minutes:02d}" if rng.random() < 0.3 else f"{hours:02d}:{minutes:02d}"


def test_random_schedules_parse_as_written_and_round_trip_through_canonical_text():
    rng = random.Random(20261025)
    for _ in range(500):
        parts, expected = [], []
        for _ in range(rng.randint(1, 4)):
            spec, days = _random_day_spec(rng)
            start = rng.randrange(1440)
            end = rng.randint(start + 1, 1440)
            parts.append(
                f"{spec}{rng.choice((' ', '  ', chr(9)))}"
                f"{_random_time(rng, start)}-{_random_time(rng, end)}"
            )
            expected.append(Window(days, start, end))
        text = rng.choice((";", "; ", " ;\n")).join(parts)

        schedule = parse_schedule(text)

        assert schedule == WeeklySchedule(tuple(expected)), text
        assert parse_schedule(str(schedule)) == schedule, text
        assert str(parse_schedule(str(schedule))) == str(schedule), text


# --- is_open --------------------------------------------------------------------------------

OFFICE = parse_schedule("Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30")


@pytest.mark.parametrize(
    ("local", "is_open"),
    [
        (london(2026, 11, 10, 9, 59, 59), False),
        (london(2026, 11, 10, 10, 0), True),
        (london(2026, 11, 10, 11, 59, 59), True),
        (london(2026, 11, 10, 12, 0), False),
        (london(2026, 11, 11, 10, 30), False),
        (london(2026, 11, 11, 14, 0), True),
        (london(2026, 11, 13, 15, 29, 59), True),
        (london(2026, 11, 13, 15, 30), False),
        (london(2026, 11, 14, 14, 30), False),
    ],
)
def test_window_start_is_inclusive_and_end_is_exclusive(local, is_open):
    assert OFFICE.is_open(local) is is_open


def test_window_ending_at_24_00_covers_the_last_minute_of_the_day():
    schedule = parse_schedule("Fri 22:00-24:00")
    assert schedule.is_open(london(2026, 11, 13, 23, 59, 59))
    assert not schedule.is_open(london(2026, 11, 14, 0, 0))


@pytest.mark.parametrize(
    "local",
    [london(2026, 11, 15, 23, 59, 59), london(2026, 11, 16), london(2026, 3, 29, 1, 30)],
)
def test_all_week_all_day_schedule_is_always_open(local):
    assert parse_schedule("Mon-Sun 00:00-24:00").is_open(local)


def test_is_open_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.is_open(datetime(2026, 11, 10, 10, 30))


# --- current and next opening ---------------------------------------------------------------

WORKDAY = parse_schedule("Mon-Fri 08:00-18:00")


def test_current_opening_is_the_occurrence_containing_now():
    opening = current_opening(OFFICE, london(2026, 11, 10, 11, 0), LONDON)
    assert opening == Opening(london(2026, 11, 10, 10, 0), london(2026, 11, 10, 12, 0))


def test_current_opening_is_none_between_windows():
    assert current_opening(OFFICE, london(2026, 11, 10, 12, 0), LONDON) is None


def test_now_in_utc_is_converted_to_local_time_first():
    opening = current_opening(WORKDAY, utc(2026, 6, 1, 7, 30), LONDON)
    assert opening is not None
    assert (opening.start, opening.end) == (utc(2026, 6, 1, 7, 0), utc(2026, 6, 1, 17, 0))
    assert opening.start.tzinfo is LONDON


@pytest.mark.parametrize(
    "text",
    ["Mon 08:00-12:00; Mon 12:00-18:00", "Mon 08:00-13:00; Mon 12:00-18:00; Mon 09:00-10:00"],
)
def test_touching_or_overlapping_windows_on_the_same_day_are_one_opening(text):
    opening = current_opening(parse_schedule(text), london(2026, 11, 9, 12, 0), LONDON)
    assert opening == Opening(london(2026, 11, 9, 8, 0), london(2026, 11, 9, 18, 0))


def test_separate_windows_on_the_same_day_stay_separate_openings():
    schedule = parse_schedule("Mon 08:00-12:00; Mon 12:01-18:00")
    opening = current_opening(schedule, london(2026, 11, 9, 11, 0), LONDON)
    assert opening == Opening(london(2026, 11, 9, 8, 0), london(2026, 11, 9, 12, 0))


def test_openings_on_either_side_of_midnight_are_not_merged():
    schedule = parse_schedule("Fri 22:00-24:00; Sat 00:00-02:00")
    assert current_opening(schedule, london(2026, 11, 13, 23, 30), LONDON) == Opening(
        london(2026, 11, 13, 22, 0), london(2026, 11, 14, 0, 0)
    )
    assert current_opening(schedule, london(2026, 11, 14, 0, 0), LONDON) == Opening(
        london(2026, 11, 14, 0, 0), london(2026, 11, 14, 2, 0)
    )


def test_closed_date_has_no_current_opening():
    friday = london(2026, 12, 25, 10, 0)
    assert current_opening(WORKDAY, friday, LONDON) is not None
    assert current_opening(WORKDAY, friday, LONDON, CHRISTMAS_CLOSURES) is None


@pytest.mark.parametrize("function", [current_opening, next_opening])
def test_openings_refuse_a_naive_now(function):
    with pytest.raises(ValueError, match="timezone-aware"):
        function(WORKDAY, datetime(2026, 11, 9, 10, 0), LONDON)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        # open now: the current opening
        (london(2026, 11, 10, 11, 0), london(2026, 11, 10, 10, 0), london(2026, 11, 10, 12, 0)),
        # exactly at a start: that opening
        (london(2026, 11, 10, 14, 0), london(2026, 11, 10, 14, 0), london(2026, 11, 10, 15, 30)),
        # between windows: later today
        (london(2026, 11, 10, 12, 0), london(2026, 11, 10, 14, 0), london(2026, 11, 10, 15, 30)),
        # after the last window: tomorrow
        (london(2026, 11, 10, 15, 30), london(2026, 11, 11, 14, 0), london(2026, 11, 11, 15, 30)),
        # late on Friday: round the week to Monday
        (london(2026, 11, 13, 23, 0), london(2026, 11, 16, 14, 0), london(2026, 11, 16, 15, 30)),
    ],
)
def test_next_opening_is_the_current_one_or_the_first_to_start_after_now(now, start, end):
    assert next_opening(OFFICE, now, LONDON) == Opening(start, end)


def test_next_opening_wraps_round_the_week_from_the_end_of_the_only_window():
    schedule = parse_schedule("Mon 08:00-10:00")
    assert next_opening(schedule, london(2026, 11, 9, 10, 0), LONDON) == Opening(
        london(2026, 11, 16, 8, 0), london(2026, 11, 16, 10, 0)
    )


def test_next_opening_skips_closed_dates():
    christmas_eve_evening = london(2026, 12, 24, 18, 0)
    assert next_opening(WORKDAY, christmas_eve_evening, LONDON, CHRISTMAS_CLOSURES) == Opening(
        london(2026, 12, 29, 8, 0), london(2026, 12, 29, 18, 0)
    )


def test_closed_dates_are_local_dates():
    # 23:30 UTC on 24 June is already 25 June in London.
    schedule = parse_schedule("Mon-Sun 00:00-24:00")
    closed = frozenset({date(2026, 6, 25)})
    assert current_opening(schedule, utc(2026, 6, 24, 23, 30), LONDON, closed) is None
    assert next_opening(schedule, utc(2026, 6, 24, 23, 30), LONDON, closed) == Opening(
        london(2026, 6, 26), london(2026, 6, 27)
    )


@pytest.mark.parametrize(
    ("horizon_days", "found"), [(0, False), (5, False), (6, True), (370, True)]
)
def test_next_opening_looks_no_further_than_the_horizon(horizon_days, found):
    tuesday = london(2026, 11, 10, 12, 0)
    opening = next_opening(
        parse_schedule("Mon 08:00-10:00"), tuesday, LONDON, frozenset(), horizon_days
    )
    assert (opening is not None) is found


def test_next_opening_is_none_when_every_date_in_the_horizon_is_closed():
    today = date(2026, 11, 9)
    closed = frozenset(today + timedelta(days=offset) for offset in range(31))
    assert next_opening(WORKDAY, london(2026, 11, 9, 7, 0), LONDON, closed, 30) is None


def test_next_opening_refuses_a_negative_horizon():
    with pytest.raises(ValueError, match="horizon_days"):
        next_opening(WORKDAY, london(2026, 11, 9, 7, 0), LONDON, frozenset(), -1)


# --- UK clock changes: 29 March 2026 (01:00 GMT -> 02:00 BST), 25 October 2026 (02:00 BST ->
# 01:00 GMT) ------------------------------------------------------------------------------------

EARLY_SUNDAY = parse_schedule("Sun 00:30-03:00")


def test_window_across_the_spring_forward_gap_is_an_hour_shorter():
    opening = next_opening(EARLY_SUNDAY, utc(2026, 3, 28, 12, 0), LONDON)
    assert opening == Opening(utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2, 0))
    assert opening.end.astimezone(UTC) - opening.start.astimezone(UTC) == timedelta(hours=1.5)


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (utc(2026, 3, 29, 0, 29), False),
        (utc(2026, 3, 29, 0, 59), True),
        (utc(2026, 3, 29, 1, 0), True),  # 02:00 BST, straight after 00:59 GMT
        (utc(2026, 3, 29, 1, 59), True),
        (utc(2026, 3, 29, 2, 0), False),  # 03:00 BST
    ],
)
def test_window_across_the_spring_forward_gap_is_open_on_both_sides_of_it(now, is_open):
    assert (current_opening(EARLY_SUNDAY, now, LONDON) is not None) is is_open


def test_window_across_the_fall_back_overlap_is_an_hour_longer():
    opening = next_opening(EARLY_SUNDAY, utc(2026, 10, 24, 12, 0), LONDON)
    assert opening == Opening(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 3, 0))
    assert opening.end.astimezone(UTC) - opening.start.astimezone(UTC) == timedelta(hours=3.5)


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (utc(2026, 10, 24, 23, 29), False),
        (utc(2026, 10, 24, 23, 30), True),  # 00:30 BST on Sunday, still Saturday in UTC
        (utc(2026, 10, 25, 0, 59), True),  # 01:59 BST
        (utc(2026, 10, 25, 1, 0), True),  # 01:00 GMT, the second time round
        (utc(2026, 10, 25, 2, 59), True),
        (utc(2026, 10, 25, 3, 0), False),
    ],
)
def test_window_across_the_fall_back_overlap_is_open_through_the_repeated_hour(now, is_open):
    assert (current_opening(EARLY_SUNDAY, now, LONDON) is not None) is is_open


@pytest.mark.parametrize(("day", "hours"), [(29, 23), (30, 24)])
def test_whole_day_window_lasts_as_long_as_the_local_day_in_march(day, hours):
    opening = next_opening(parse_schedule("Mon-Sun 00:00-24:00"), london(2026, 3, day, 12), LONDON)
    assert opening.end.astimezone(UTC) - opening.start.astimezone(UTC) == timedelta(hours=hours)


def test_whole_day_window_on_the_day_the_clocks_go_back_lasts_25_hours():
    opening = next_opening(parse_schedule("Sun 00:00-24:00"), london(2026, 10, 25, 12), LONDON)
    assert opening.end.astimezone(UTC) - opening.start.astimezone(UTC) == timedelta(hours=25)


@pytest.mark.parametrize(
    ("now", "is_open", "next_start"),
    [
        # Monday 30 March 2026, BST: 08:00 local is 07:00 UTC
        (utc(2026, 3, 30, 6, 59), False, utc(2026, 3, 30, 7, 0)),
        (utc(2026, 3, 30, 7, 0), True, utc(2026, 3, 30, 7, 0)),
        # Monday 26 October 2026, GMT: 08:00 local is 08:00 UTC
        (utc(2026, 10, 26, 7, 59), False, utc(2026, 10, 26, 8, 0)),
        (utc(2026, 10, 26, 8, 0), True, utc(2026, 10, 26, 8, 0)),
    ],
)
def test_workday_opens_at_eight_local_on_the_monday_after_each_clock_change(
    now, is_open, next_start
):
    assert (current_opening(WORKDAY, now, LONDON) is not None) is is_open
    assert next_opening(WORKDAY, now, LONDON).start == next_start


def test_start_time_skipped_by_the_clocks_going_forward_reads_an_hour_later():
    opening = next_opening(parse_schedule("Sun 01:30-09:00"), utc(2026, 3, 28), LONDON)
    assert opening.start == utc(2026, 3, 29, 1, 30)
    assert (opening.start.hour, opening.start.minute) == (2, 30)  # normalised to real BST


def test_window_left_with_no_real_time_by_the_clocks_going_forward_does_not_happen():
    schedule = parse_schedule("Sun 01:30-02:00; Sun 09:00-10:00")
    assert next_opening(schedule, utc(2026, 3, 28), LONDON).start == london(2026, 3, 29, 9, 0)


def test_time_repeated_by_the_clocks_going_back_means_its_first_occurrence():
    schedule = parse_schedule("Sun 01:00-01:30")
    opening = next_opening(schedule, utc(2026, 10, 24), LONDON)
    # Ambiguous local times never equal another zone's datetimes (PEP 495), so compare in UTC.
    assert opening.start.astimezone(UTC) == utc(2026, 10, 25, 0, 0)
    assert opening.end.astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    assert current_opening(schedule, london(2026, 10, 25, 1, 15, fold=1), LONDON) is None

