from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from callflow.schedule import Opening, next_opening, parse_schedule
from callflow.speech import spoken_day, spoken_next_start, spoken_opening, spoken_time

LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("t", "spoken"),
    [
        (time(10, 0), "10 a.m."),
        (time(14, 0), "2 p.m."),
        (time(15, 30), "3:30 p.m."),
        (time(12, 0), "12 noon"),
        (time(12, 30), "12:30 p.m."),
        (time(9, 5), "9:05 a.m."),
        (time(0, 0), "midnight"),
        (time(0, 30), "12:30 a.m."),
        (time(23, 59), "11:59 p.m."),
        (time(8, 0, 45), "8 a.m."),
    ],
)
def test_time_is_spoken_on_the_twelve_hour_clock(t, spoken):
    assert spoken_time(t) == spoken


@pytest.mark.parametrize(
    ("day", "spoken"),
    [
        (date(2026, 11, 24), "today"),
        (date(2026, 11, 25), "tomorrow"),
        (date(2026, 11, 26), "on Thursday"),
        (date(2026, 11, 30), "on Monday"),
        (date(2026, 12, 1), "on Tuesday 1 December"),
        (date(2026, 11, 23), "on Monday 23 November"),
    ],
)
def test_day_is_named_relative_to_today_and_dated_a_week_or_more_away(day, spoken):
    assert spoken_day(day, date(2026, 11, 24)) == spoken


TUESDAY_MORNING = london(2026, 11, 24, 9, 0)


@pytest.mark.parametrize(
    ("opening", "now", "spoken"),
    [
        (
            Opening(london(2026, 11, 24, 14, 0), london(2026, 11, 24, 15, 30)),
            TUESDAY_MORNING,
            "today between 2 p.m. and 3:30 p.m.",
        ),
        (
            Opening(london(2026, 11, 24, 14, 0), london(2026, 11, 24, 15, 30)),
            london(2026, 11, 24, 14, 0),
            "now, until 3:30 p.m.",
        ),
        (
            Opening(london(2026, 11, 25, 10, 0), london(2026, 11, 25, 12, 0)),
            TUESDAY_MORNING,
            "tomorrow between 10 a.m. and 12 noon",
        ),
        (
            Opening(london(2026, 11, 30, 10, 0), london(2026, 11, 30, 12, 0)),
            TUESDAY_MORNING,
            "on Monday between 10 a.m. and 12 noon",
        ),
        (
            Opening(london(2026, 12, 1, 10, 0), london(2026, 12, 1, 12, 0)),
            TUESDAY_MORNING,
            "on Tuesday 1 December between 10 a.m. and 12 noon",
        ),
        (
            Opening(london(2026, 11, 24, 22, 0), london(2026, 11, 25, 0, 0)),
            TUESDAY_MORNING,
            "today between 10 p.m. and midnight",
        ),
        (
            Opening(london(2026, 11, 24, 22, 0), london(2026, 11, 25, 0, 0)),
            london(2026, 11, 24, 23, 59),
            "now, until midnight",
        ),
    ],
)
def test_opening_is_spoken_relative_to_now(opening, now, spoken):
    assert spoken_opening(opening, now, LONDON) == spoken


def test_opening_is_spoken_in_local_time_when_now_is_given_in_utc():
    # 23:30 UTC on Monday 1 June is 00:30 BST on Tuesday: a 10 a.m. opening is "today".
    opening = Opening(london(2026, 6, 2, 10, 0), london(2026, 6, 2, 12, 0))
    now = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert spoken_opening(opening, now, LONDON) == "today between 10 a.m. and 12 noon"


@pytest.mark.parametrize(
    ("start", "now", "spoken"),
    [
        (london(2026, 12, 21, 14, 0), london(2026, 12, 21, 12, 0), "today at 2 p.m."),
        (london(2026, 12, 22, 8, 0), london(2026, 12, 21, 18, 0), "tomorrow at 8 a.m."),
        (london(2026, 12, 28, 8, 0), london(2026, 12, 24, 18, 0), "on Monday at 8 a.m."),
        (
            london(2026, 12, 29, 8, 0),
            london(2026, 12, 22, 18, 0),
            "on Tuesday 29 December at 8 a.m.",
        ),
        (london(2026, 12, 21, 14, 0), london(2026, 12, 21, 14, 30), "now"),
    ],
)
def test_next_start_is_spoken_as_a_day_and_a_time(start, now, spoken):
    opening = Opening(start, start.replace(hour=start.hour + 1))
    assert spoken_next_start(opening, now, LONDON) == spoken


def test_caller_on_christmas_eve_hears_the_first_working_day_after_the_closures():
    closed = frozenset({date(2026, 12, 25), date(2026, 12, 28)})
    now = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    opening = next_opening(parse_schedule("Mon-Fri 08:00-18:00"), now, LONDON, closed)
    assert spoken_next_start(opening, now, LONDON) == "on Tuesday at 8 a.m."
    assert spoken_opening(opening, now, LONDON) == "on Tuesday between 8 a.m. and 6 p.m."
