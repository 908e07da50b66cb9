"""Recording calls as evidence, if the centre chooses (policy 4.3, 4.5): who is recorded, what
they are told first, and who may hear a recording.

Pure: the shell hands in the centre's setting and whether the caller is on the register.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from callflow import words
from callflow.events import Event, EventKind
from callflow.roles import Capability, may


class RecordingPolicy(StrEnum):
    """Which calls are recorded (CALLFLOW_RECORDING)."""

    NONE = "none"
    REGISTER = "register"  # only callers on the person of interest register
    ALL = "all"


RECORDING_POLICY_LABELS: dict[RecordingPolicy, str] = {
    RecordingPolicy.NONE: "No calls are recorded",
    RecordingPolicy.REGISTER: "Calls from people on the register are recorded",
    RecordingPolicy.ALL: "All calls put through to staff are recorded",
}

# What a recorded caller hears before anything else.
RECORDED_NOTICE = "Please note that this call will be recorded."


def records_call(policy: RecordingPolicy, restricted: bool) -> bool:
    """Whether a call put through to staff is recorded, under `policy`."""
    if policy is RecordingPolicy.ALL:
        return True
    return policy is RecordingPolicy.REGISTER and restricted


class RecordingStatus(StrEnum):
    """Twilio's RecordingStatus on a recording status callback."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABSENT = "absent"
    FAILED = "failed"


RECORDING_STATUS_WORDS: dict[RecordingStatus, str] = {
    RecordingStatus.IN_PROGRESS: "Recording started",
    RecordingStatus.COMPLETED: "Call recorded",
    RecordingStatus.ABSENT: "The call recording is missing (nothing was recorded)",
    RecordingStatus.FAILED: "The call could not be recorded",
}


def recording_status(value: str) -> RecordingStatus | None:
    """Twilio's status as a RecordingStatus, or None when it is not one."""
    try:
        return RecordingStatus(value)
    except ValueError:
        return None


def may_hear_recordings(role: str | None) -> bool:
    """Whether a member of staff in `role` may see and hear call recordings (managers only)."""
    return may(role, Capability.HEAR_RECORDINGS)


def duration_words(seconds: int | None) -> str:
    """A recording's length as a person reads it: "2 minutes 5 seconds"."""
    return "" if seconds is None else words.duration(seconds)


def on_register(recorded_events: Iterable[Event]) -> bool:
    """Whether a decision's events found the caller on the register (its lookup named an entry)."""
    return any(event.kind == EventKind.LOOKUP and event.detail.get("entry_id") is not None
               for event in recorded_events)
