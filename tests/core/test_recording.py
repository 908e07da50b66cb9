"""Issue 14 items 5-7 in the core: the warning as played, answering machines, recording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callflow import events
from callflow.announcement import (
    LEAVE_WORDS,
    LeaveReason,
    Party,
    WarningState,
    announcement_outcome,
    leave_reason,
    party_of,
    warning_state_at,
)
from callflow.answering_machine import answered_by_machine, detects_machines
from callflow.ending import EndPlan, EndReason, EndRefusal, EndRefused, plan_end
from callflow.recording import (
    RecordingPolicy,
    RecordingStatus,
    duration_words,
    may_hear_recordings,
    on_register,
    recording_status,
    records_call,
)
from callflow.roles import Role

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SWEARING = EndReason.AGGRESSIVE_ABUSIVE


# -- the warning as Twilio played it (item 5) ---------------------------------------------------


def test_announcement_events_say_whether_the_warning_played():
    assert announcement_outcome("announcement-end") is WarningState.PLAYED
    assert announcement_outcome("announcement-fail") is WarningState.FAILED
    assert announcement_outcome("participant-leave") is None


@pytest.mark.parametrize(("warning", "refusal"), [
    (WarningState.PLAYING, EndRefusal.WARNING_PLAYING),
    (WarningState.FAILED, EndRefusal.WARNING_FAILED),
])
def test_end_call_waits_until_the_caller_has_heard_the_warning(warning, refusal):
    with pytest.raises(EndRefused) as refused:
        plan_end(SWEARING, warned=True, warning=warning)
    assert refused.value.refusal is refusal
    with pytest.raises(EndRefused):
        plan_end(None, warned=True, warning=warning)


@pytest.mark.parametrize("warning", [WarningState.PLAYED, WarningState.UNCONFIRMED, None])
def test_a_played_or_unconfirmed_warning_lets_the_call_end(warning):
    assert plan_end(SWEARING, warned=True, warning=warning) == EndPlan(
        reason=SWEARING, closing_statement=True, opens_incident=False, wrap_up_owed=False)


@pytest.mark.parametrize("warning", list(WarningState))
def test_a_threat_ends_the_call_whatever_the_warning(warning):
    plan = plan_end(EndReason.THREAT_OR_VIOLENCE, warned=True, warning=warning)
    assert plan.opens_incident is True and plan.closing_statement is False


def test_the_refusals_say_what_to_do_in_plain_words():
    assert EndRefusal.WARNING_PLAYING.value == (
        "the warning is still playing to the caller: end the call once it has finished")
    assert EndRefusal.WARNING_FAILED.value == (
        "the warning could not be played to the caller, so they have not heard it: give the "
        "warning again before ending the call")


def test_a_warning_never_confirmed_stops_holding_the_call_after_the_time_allowed():
    given = NOW - timedelta(seconds=19)
    assert warning_state_at(WarningState.PLAYING, given, NOW, 20) is WarningState.PLAYING
    assert warning_state_at(WarningState.PLAYING, NOW - timedelta(seconds=20), NOW, 20) is (
        WarningState.UNCONFIRMED)
    assert warning_state_at(WarningState.PLAYED, given, NOW, 0) is WarningState.PLAYED
    assert warning_state_at(WarningState.FAILED, given, NOW, 0) is WarningState.FAILED
    assert warning_state_at(None, None, NOW, 20) is None


def test_twilios_reasons_for_leaving_read_as_plain_words():
    assert leave_reason("participant_hung_up") is LeaveReason.PARTICIPANT_HUNG_UP
    assert leave_reason("something_new") is LeaveReason.UNKNOWN
    assert leave_reason("") is LeaveReason.UNKNOWN
    assert set(LEAVE_WORDS) == set(LeaveReason)
    assert all("_" not in words for words in LEAVE_WORDS.values())


def test_who_left_is_the_caller_the_member_of_staff_or_someone_else():
    caller, staff_leg, other = "CA" + "1" * 32, "CA" + "2" * 32, "CA" + "3" * 32
    assert party_of(caller, caller, staff_leg=False) is Party.CALLER
    assert party_of(staff_leg, caller, staff_leg=True) is Party.STAFF
    assert party_of(other, caller, staff_leg=False) is Party.OTHER


# -- answering machines (item 6) ----------------------------------------------------------------


@pytest.mark.parametrize(("target", "detect"), [
    ("+447700900999", True), ("client:alex", False), ("", False)])
def test_only_a_phone_is_checked_for_an_answering_machine(target, detect):
    assert detects_machines(target) is detect


@pytest.mark.parametrize(("answered_by", "machine"), [
    ("machine_start", True), ("machine_end_beep", True), ("machine_end_silence", True),
    ("machine_end_other", True), ("fax", True),
    # a person, or someone who said nothing: put through rather than lost
    ("human", False), ("unknown", False), ("", False), ("robot", False)])
def test_a_machine_or_fax_is_no_answer_but_a_person_or_unknown_is_put_through(answered_by,
                                                                                 machine):
    assert answered_by_machine(answered_by) is machine


# -- recording (item 7) -------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "restricted", "recorded"), [
    (RecordingPolicy.NONE, True, False), (RecordingPolicy.NONE, False, False),
    (RecordingPolicy.REGISTER, True, True), (RecordingPolicy.REGISTER, False, False),
    (RecordingPolicy.ALL, True, True), (RecordingPolicy.ALL, False, True)])
def test_the_centres_setting_says_which_calls_are_recorded(policy, restricted, recorded):
    assert records_call(policy, restricted) is recorded


def test_a_decision_names_a_caller_on_the_register_by_its_lookup():
    found = events.looked_up(NOW, "cache", False, 7)
    not_found = events.looked_up(NOW, "cache", False, None)
    assert on_register([events.received(NOW, "+447700900123", "+441632960000", False), found])
    assert not on_register([not_found])
    assert not on_register([])


@pytest.mark.parametrize(("role", "hears"), [
    (Role.MANAGER, True), (Role.SUPERVISOR, False), (Role.AGENT, False), (Role.ADMIN, False),
    ("nobody", False), (None, False)])
def test_only_managers_see_and_hear_recordings(role, hears):
    assert may_hear_recordings(role) is hears


def test_recording_statuses_and_lengths_read_plainly():
    assert recording_status("completed") is RecordingStatus.COMPLETED
    assert recording_status("absent") is RecordingStatus.ABSENT
    assert recording_status("odd") is None
    assert [duration_words(s) for s in (0, 1, 59, 60, 61, 125, None)] == [
        "0 seconds", "1 second", "59 seconds", "1 minute", "1 minute 1 second",
        "2 minutes 5 seconds", ""]
