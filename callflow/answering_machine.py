"""Answering machine detection on a staff phone (policy 4.1): a voicemail never takes a caller.

Pure: the shell says what Twilio reported in AnsweredBy and what was dialled.
"""

from __future__ import annotations

from enum import StrEnum

# Calls.create's MachineDetection value: AnsweredBy as soon as the answering party is known.
MACHINE_DETECTION = "Enable"
CLIENT_PREFIX = "client:"


class AnsweredBy(StrEnum):
    """Twilio's AnsweredBy values."""

    HUMAN = "human"
    MACHINE_START = "machine_start"
    MACHINE_END_BEEP = "machine_end_beep"
    MACHINE_END_SILENCE = "machine_end_silence"
    MACHINE_END_OTHER = "machine_end_other"
    FAX = "fax"
    UNKNOWN = "unknown"


# A machine or a fax is no answer; "unknown" may be a person who said nothing, so they are put
# through rather than have a caller lose them.
NOT_A_PERSON: frozenset[AnsweredBy] = frozenset({
    AnsweredBy.MACHINE_START, AnsweredBy.MACHINE_END_BEEP, AnsweredBy.MACHINE_END_SILENCE,
    AnsweredBy.MACHINE_END_OTHER, AnsweredBy.FAX})

# The status an unanswered leg answered by a machine is logged with (as Twilio's "no-answer").
MACHINE_STATUS = "machine"


def detects_machines(dial_target: str) -> bool:
    """Whether to ask Twilio to detect an answering machine: phones yes, the browser no."""
    return bool(dial_target) and not dial_target.startswith(CLIENT_PREFIX)


def answered_by_machine(answered_by: str) -> bool:
    """Whether Twilio's AnsweredBy says a machine (or fax), not a person, picked up."""
    try:
        return AnsweredBy(answered_by) in NOT_A_PERSON
    except ValueError:
        return False
