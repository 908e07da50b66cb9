"""Time to recover after an abusive call, and how long colleagues are warned (policy 4.5, 5.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callflow.ending import EndReason, abuse_reason, calls_for_recovery, remembered_abuse
from callflow.recovery import recovery_ends
from callflow.words import duration as time_left_text

ENDED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("reason", "recovers"), [
    (EndReason.AGGRESSIVE_ABUSIVE, True),
    (EndReason.THREAT_OR_VIOLENCE, True),
    ("threat_or_violence", True),  # as the call log stores it
    (EndReason.UNREASONABLE_DEMANDS, False),
    (EndReason.UNREASONABLE_PERSISTENCE, False),
    (None, False),  # one click: the reason is not known yet
    ("not-a-reason", False),
])
def test_only_abuse_and_threats_give_time_to_recover(reason, recovers):
    assert calls_for_recovery(reason) is recovers
    assert (abuse_reason(reason) is not None) is recovers


def test_recovery_ends_the_configured_minutes_after_the_call_and_zero_turns_it_off():
    assert recovery_ends(ENDED, 5) == ENDED + timedelta(minutes=5)
    assert recovery_ends(ENDED, 0) is None


@pytest.mark.parametrize(("seconds", "text"), [
    (300, "5 minutes"), (245, "4 minutes 5 seconds"), (61, "1 minute 1 second"),
    (45, "45 seconds"), (1, "1 second"), (0, "0 seconds"),
])
def test_the_time_left_reads_in_words(seconds, text):
    assert time_left_text(seconds) == text


@pytest.mark.parametrize(("days_ago", "memory_days", "remembered"), [
    (0, 30, True), (29.9, 30, True), (30, 30, True), (30.1, 30, False), (1, 0, False),
    (-1, 30, False),  # not yet happened: a clock out of step is not a warning
])
def test_colleagues_are_warned_for_the_configured_days(days_ago, memory_days, remembered):
    now = ENDED + timedelta(days=days_ago)
    assert remembered_abuse(ENDED, now, memory_days) is remembered
