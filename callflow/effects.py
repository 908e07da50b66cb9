"""What the shell must do for a call after a decision: typed effects, each carried out by a job.

The core says what to do; workers/calls.py holds the one table from each effect to its job.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cache
from typing import ClassVar


class Leg(StrEnum):
    """Why a member of staff was dialled into a caller's conference."""

    POOL = "pool"
    DESIGNATED = "designated"
    FALLBACK = "fallback"


@dataclass(frozen=True)
class CallEffect:
    """Something to do for a call; name is how the event stream spells it."""

    name: ClassVar[str] = ""

    def arguments(self) -> tuple[object, ...]:
        """The effect's fields as plain values, in order (its job takes the CallSid first)."""
        return tuple(value.value if isinstance(value, StrEnum) else value
                     for value in map(self.__getattribute__, _field_names(type(self))))


@cache
def _field_names(kind: type[CallEffect]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


@dataclass(frozen=True)
class DialPool(CallEffect):
    """Ring the longest-idle available agent (attempt counts the tries for this caller)."""

    name: ClassVar[str] = "dial_pool"
    attempt: int = 0


@dataclass(frozen=True)
class DialPerson(CallEffect):
    """Ring a named member of staff: a designated contact or the fallback."""

    name: ClassVar[str] = "dial_person"
    staff_id: int
    leg: Leg


@dataclass(frozen=True)
class NextAgent(CallEffect):
    """A pool agent did not answer: set them away and ring the next one."""

    name: ClassVar[str] = "next_agent"
    missed_staff_id: int
    attempt: int


# The key of a caller's one "longest wait" timer (an OfferVoicemail after the maximum wait),
# by which the call's end cancels it.
MAX_WAIT_KEY = "max-wait"


def dispatch_key(attempt: int) -> str:
    """The key of a caller's n-th attempt to find a pool agent (0: the first, at once)."""
    return f"dispatch:{attempt}"


@dataclass(frozen=True)
class OfferVoicemail(CallEffect):
    """Move a caller who is still waiting to voicemail (policy 4.1: a form of contact is kept)."""

    name: ClassVar[str] = "offer_voicemail"


@dataclass(frozen=True)
class FreeStaff(CallEffect):
    """A member of staff's leg is over: they are available again (unless they chose away)."""

    name: ClassVar[str] = "free_staff"
    staff_id: int


@dataclass(frozen=True)
class PassedOn(CallEffect):
    """A designated contact's call went on (to "fallback" or "voicemail"): tell their console."""

    name: ClassVar[str] = "passed_on"
    staff_id: int
    went_to: str


@dataclass(frozen=True)
class CallerLeft(CallEffect):
    """The caller hung up or left for the emergency line: stop any phone still ringing."""

    name: ClassVar[str] = "caller_left"


@dataclass(frozen=True)
class CountCall(CallEffect):
    """A call put through counts towards its caller's frequency limit (policy 4.6)."""

    name: ClassVar[str] = "count_call"
    entry_id: int
    at: str  # when the call was answered, ISO 8601


@dataclass(frozen=True)
class WarnOfTimeLimit(CallEffect):
    """Two minutes before the agreed call length, the caller hears a polite warning (4.6)."""

    name: ClassVar[str] = "warn_of_time_limit"
    minutes: int


@dataclass(frozen=True)
class EndAtTimeLimit(CallEffect):
    """At the agreed call length, the caller hears the closing statement and the call ends."""

    name: ClassVar[str] = "end_at_time_limit"
    minutes: int


EFFECT_TYPES: dict[str, type[CallEffect]] = {
    kind.name: kind for kind in (DialPool, DialPerson, NextAgent, OfferVoicemail, FreeStaff,
                                 PassedOn, CallerLeft, CountCall, WarnOfTimeLimit, EndAtTimeLimit)
}


def after_unanswered(leg: Leg, staff_id: int, attempt: int,
                     fallback_staff_id: int | None) -> CallEffect:
    """What follows when a dialled member of staff does not answer, is busy, or fails."""
    if leg is Leg.POOL:
        return NextAgent(staff_id, attempt)
    if leg is Leg.DESIGNATED and fallback_staff_id is not None:
        return DialPerson(fallback_staff_id, Leg.FALLBACK)
    # policy 4.1: when every person has been tried, voicemail keeps a form of contact.
    return OfferVoicemail()


def passed_on(leg: Leg, staff_id: int, step: CallEffect) -> PassedOn | None:
    """The note for a designated contact's console when their call went on without them."""
    if leg is not Leg.DESIGNATED or isinstance(step, NextAgent):
        return None
    return PassedOn(staff_id, "fallback" if isinstance(step, DialPerson) else "voicemail")
