"""The words module: dates, times and labels as GOV.UK style writes them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from callflow import words
from callflow.phone import display

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(("moment", "text"), [
    (time(15, 59), "3:59pm"), (time(10, 0), "10am"), (time(12, 0), "midday"),
    (time(0, 0), "midnight"), (time(0, 30), "12:30am"), (time(12, 5), "12:05pm"),
])
def test_times_read_as_gov_uk_writes_them(moment, text):
    assert words.clock(moment) == text


def test_dates_and_instants_are_in_the_centres_time_zone():
    assert words.long_date(date(2026, 12, 1)) == "1 December 2026"
    assert words.short_date(date(2026, 12, 1)) == "Tue 1 Dec 2026"
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    assert words.local_moment(summer, LONDON) == "Thu 2 Jul 2026, 12:30am"
    assert words.minute_of_day(24 * 60) == "midnight"


def test_codes_become_labels_from_one_place():
    assert words.reason("threat_or_violence") == "threats or violence"
    assert words.reason("aggressive_abusive") == "aggressive, abusive or intimidating behaviour"
    assert words.role("agent") == "an agent" and words.role("manager") == "a manager"
    assert words.audit_action("notice_withdrawn") == "Unsent notice withdrawn"
    assert words.change_name("starts_on") == "Starts on"
    assert words.label("participant-join", words.CONFERENCE_LABELS) == (
        "Someone joined the conference")
    assert words.humanise("something_new") == "something new"


def test_stored_values_read_as_words():
    stamp = "2026-12-02T16:02:40.006579+00:00"
    assert words.stored_value(stamp, LONDON) == "Wed 2 Dec 2026, 4:02pm"
    assert words.stored_value("2027-06-01", LONDON) == "Tue 1 Jun 2027"
    assert words.stored_value("unreasonable_demands", LONDON) == "Unreasonable demands (3.2)"
    assert words.stored_value("Behaviour has improved", LONDON) == "Behaviour has improved"


@pytest.mark.parametrize(("number", "text"), [
    ("+447700900123", "07700 900123"), ("+441914980456", "0191 498 0456"),
    ("+33123456789", "+33 1 23 45 67 89"), ("anonymous", "withheld"),
])
def test_numbers_read_in_national_format_at_home(number, text):
    assert display(number) == text
