"""The warning as Twilio played it (policy 4.5), and why someone left a call's conference.

Pure: the shell hands in Twilio's conference event names and reasons, and the time; these say
what they mean for ending the call and how staff read them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class WarningState(StrEnum):
    """Where the warning to the caller stands, as the live call holds it."""

    PLAYING = "playing"
    PLAYED = "played"
    FAILED = "failed"
    # Twilio never said how it went within the time allowed: treated as played, and logged so.
    UNCONFIRMED = "unconfirmed"


class AnnouncementEvent(StrEnum):
    """Twilio's conference StatusCallbackEvent values for an announcement."""

    END = "announcement-end"
    FAIL = "announcement-fail"


# The statusCallbackEvent word on <Conference> that subscribes to both of the above.
ANNOUNCEMENT_WORD = "announcement"

WARNING_STATE_WORDS: dict[WarningState, str] = {
    WarningState.PLAYING: "The warning is playing to the caller",
    WarningState.PLAYED: "The warning was played to the caller",
    WarningState.FAILED: "The warning could not be played to the caller",
    WarningState.UNCONFIRMED: ("The warning was sent, but the phone system did not confirm "
                               "it played"),
}


def announcement_outcome(event: str) -> WarningState | None:
    """What an announcement status callback says of the warning, or None for another event."""
    if event == AnnouncementEvent.END:
        return WarningState.PLAYED
    if event == AnnouncementEvent.FAIL:
        return WarningState.FAILED
    return None


def warning_state_at(state: WarningState | None, given_at: datetime | None, now: datetime,
                     confirm_seconds: int) -> WarningState | None:
    """The warning's state for ending the call at `now`.

    A warning still playing `confirm_seconds` after it was given is UNCONFIRMED: Twilio's
    callback may be lost, and a caller who goes on being abusive must not be kept on the line.
    """
    if state is not WarningState.PLAYING or given_at is None:
        return state
    if now - given_at >= timedelta(seconds=confirm_seconds):
        return WarningState.UNCONFIRMED
    return state


class LeaveReason(StrEnum):
    """Twilio's ReasonParticipantLeft on a participant-leave conference event."""

    CONFERENCE_ENDED_VIA_API = "conference_ended_via_api"
    MODERATOR_ENDED_CONFERENCE = "moderator_ended_conference"
    PARTICIPANT_UPDATED_VIA_API = "participant_updated_via_api"
    PARTICIPANT_HUNG_UP = "participant_hung_up"
    PARTICIPANT_ADD_FAILED = "participant_add_failed"
    UNKNOWN = "unknown"


LEAVE_WORDS: dict[LeaveReason, str] = {
    LeaveReason.CONFERENCE_ENDED_VIA_API: "the call was ended from the console",
    LeaveReason.MODERATOR_ENDED_CONFERENCE: "the call ended because the other person left it",
    LeaveReason.PARTICIPANT_UPDATED_VIA_API: (
        "moved out of the call by callflow (for example, to hear the closing statement)"),
    LeaveReason.PARTICIPANT_HUNG_UP: "hung up",
    LeaveReason.PARTICIPANT_ADD_FAILED: "could not be added to the call",
    LeaveReason.UNKNOWN: "left the call (no reason given)",
}


def leave_reason(value: str) -> LeaveReason:
    """Twilio's reason as a LeaveReason; one it does not document is UNKNOWN."""
    try:
        return LeaveReason(value)
    except ValueError:
        return LeaveReason.UNKNOWN


class Party(StrEnum):
    """Who a conference participant is to the call."""

    CALLER = "caller"
    STAFF = "staff"
    OTHER = "other"


def party_of(participant_sid: str, caller_sid: str, staff_leg: bool) -> Party:
    """Whether a participant is the caller, a member of staff, or someone else (a supervisor)."""
    if participant_sid == caller_sid:
        return Party.CALLER
    return Party.STAFF if staff_leg else Party.OTHER
