"""Call length and frequency limits, an arrangement under policy 4.6: the rules, pure.

A manager may agree with a caller that they call at most N times a day or a week, and/or that
a call lasts at most M minutes. The shell hands in the caller's recent calls and the time; these
functions say whether the call may go ahead, when the caller may call next, and when a long
call is warned and ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from callflow.call_state import CallState
from callflow.effects import CallEffect, CountCall, EndAtTimeLimit, WarnOfTimeLimit

# The caller hears a polite warning this long before their agreed call length runs out.
WARNING_BEFORE = timedelta(minutes=2)
# Bounds a manager may set: a limit beyond these is no limit at all, and is refused.
MAX_CALLS_BOUND = 50
MAX_MINUTES_BOUND = 240


class LimitPeriod(StrEnum):
    """The period a frequency limit counts calls over: a local calendar day or week."""

    DAY = "day"
    WEEK = "week"

    @property
    def this_period(self) -> str:
        """``today`` or ``this week``, as a caller hears it."""
        return "today" if self is LimitPeriod.DAY else "this week"


class LimitEnd(StrEnum):
    """Why callflow itself ended a call; logged as the end reason, like an agent's."""

    CALL_LENGTH = "call_length_limit"


LIMIT_END_LABELS = {LimitEnd.CALL_LENGTH: "the agreed call length was reached (4.6)"}


class CallLimitError(ValueError):
    """A limit written in a form callflow cannot read."""


@dataclass(frozen=True)
class CallLimits:
    """At most max_calls calls each `per`, and/or at most max_minutes minutes a call."""

    max_calls: int | None = None
    per: LimitPeriod = LimitPeriod.DAY
    max_minutes: int | None = None

    @property
    def limits_frequency(self) -> bool:
        """True when the number of calls is limited."""
        return self.max_calls is not None

    @property
    def limits_length(self) -> bool:
        """True when the length of a call is limited."""
        return self.max_minutes is not None

    def __bool__(self) -> bool:
        return self.limits_frequency or self.limits_length

    @property
    def frequency_text(self) -> str:
        """``2 a day``: the register's and the form's way of writing the frequency limit."""
        return f"{self.max_calls} a {self.per.value}" if self.max_calls is not None else ""

    @property
    def minutes_text(self) -> str:
        """The length limit in minutes as text, or "" for none."""
        return str(self.max_minutes) if self.max_minutes is not None else ""

    @property
    def frequency_words(self) -> str:
        """``1 call a day``, ``3 calls a week``; "" when the number of calls is not limited."""
        if self.max_calls is None:
            return ""
        return f"{self.max_calls} {'call' if self.max_calls == 1 else 'calls'} a {self.per.value}"

    def describe(self) -> str:
        """The limits in plain words: ``at most 1 call a day, calls of up to 15 minutes``."""
        parts = []
        if self.max_calls is not None:
            parts.append(f"at most {self.frequency_words}")
        if self.max_minutes is not None:
            parts.append(f"calls of up to {self.max_minutes} minutes")
        return ", ".join(parts)

    def to_cache(self) -> list[object] | None:
        """A compact JSON-ready form for the routing cache, or None when there is no limit."""
        return [self.max_calls, self.per.value, self.max_minutes] if self else None

    @classmethod
    def from_cache(cls, data: object) -> CallLimits:
        """Rebuild from to_cache's form (None or absent: no limits)."""
        if not data:
            return NO_LIMITS
        max_calls, per, max_minutes = data  # type: ignore[misc]
        return cls(None if max_calls is None else int(max_calls), LimitPeriod(per),
                   None if max_minutes is None else int(max_minutes))


NO_LIMITS = CallLimits()

_FREQUENCY = re.compile(r"^(\d+)\s*(?:calls?\s*)?(?:a|an|per|each|every|/)\s*(day|week)$")


def parse_frequency(text: str) -> tuple[int | None, LimitPeriod]:
    """``2 a day``, ``1 call per week``; "" is no limit."""
    cleaned = " ".join(text.strip().lower().split())
    if not cleaned:
        return None, LimitPeriod.DAY
    match = _FREQUENCY.match(cleaned)
    if not match:
        raise CallLimitError(f"{text.strip()!r}: write it as a number of calls a day or a week, "
                             "for example 1 a day or 3 a week")
    count = int(match.group(1))
    if not 1 <= count <= MAX_CALLS_BOUND:
        raise CallLimitError(f"{count} calls: give a number between 1 and {MAX_CALLS_BOUND}")
    return count, LimitPeriod(match.group(2))


def parse_minutes(text: str) -> int | None:
    """A whole number of minutes a call may last; "" is no limit."""
    cleaned = text.strip().lower().removesuffix("minutes").removesuffix("mins").strip()
    if not cleaned:
        return None
    if not cleaned.isdigit():
        raise CallLimitError(f"{text.strip()!r} is not a whole number of minutes")
    minutes = int(cleaned)
    # The warning comes two minutes before the end: a shorter call could not be warned.
    if not 3 <= minutes <= MAX_MINUTES_BOUND:
        unit = "minute" if minutes == 1 else "minutes"
        raise CallLimitError(f"{minutes} {unit}: a call may last between 3 and "
                             f"{MAX_MINUTES_BOUND} minutes")
    return minutes


def period_start(now: datetime, tz: tzinfo, per: LimitPeriod) -> datetime:
    """The local midnight that began the current day, or the current week (Monday)."""
    local = now.astimezone(tz).date()
    if per is LimitPeriod.WEEK:
        local -= timedelta(days=local.weekday())
    return datetime.combine(local, time(0), tzinfo=tz)


def next_period_start(now: datetime, tz: tzinfo, per: LimitPeriod) -> datetime:
    """The local midnight that begins the next day, or the next week (Monday)."""
    start = period_start(now, tz, per).date()
    return datetime.combine(start + timedelta(days=7 if per is LimitPeriod.WEEK else 1),
                            time(0), tzinfo=tz)


def calls_this_period(recent: Iterable[datetime], now: datetime, tz: tzinfo,
                      per: LimitPeriod) -> int:
    """How many of the recent calls fall in the current period (up to now)."""
    start = period_start(now, tz, per)
    return sum(1 for moment in recent if start <= moment <= now)


def next_call_from(limits: CallLimits, recent: Iterable[datetime], now: datetime,
                   tz: tzinfo) -> datetime | None:
    """When the caller may call again if this call is over their frequency limit, else None."""
    if limits.max_calls is None:
        return None
    if calls_this_period(recent, now, tz, limits.per) < limits.max_calls:
        return None
    return next_period_start(now, tz, limits.per)


def counting_window(limits: CallLimits) -> timedelta:
    """How far back the shell must remember calls to judge the frequency limit."""
    return timedelta(days=8 if limits.per is LimitPeriod.WEEK else 2)


@dataclass(frozen=True)
class LaterStep:
    """An effect to carry out for a call put through: its key in the call, and its delay."""

    effect: CallEffect
    key: str
    delay_seconds: int = 0


def steps_for_call(limits: CallLimits, entry_id: int, answered: datetime) -> tuple[LaterStep, ...]:
    """What a call put through under these limits needs: counting towards the frequency limit,
    and the warning and the end of a call of limited length (timed from when it was answered)."""
    steps: list[LaterStep] = []
    if limits.max_calls is not None:
        steps.append(LaterStep(CountCall(entry_id, answered.isoformat()), "count-call"))
    if limits.max_minutes is not None:
        end = limits.max_minutes * 60
        warning = max(0, end - int(WARNING_BEFORE.total_seconds()))
        steps += [LaterStep(WarnOfTimeLimit(limits.max_minutes), "time-warning", warning),
                  LaterStep(EndAtTimeLimit(limits.max_minutes), "time-end", end)]
    return tuple(steps)


# A call of limited length is ended only while the caller waits for or talks to a person: a call
# put through to the emergency line, or leaving a voicemail, is never cut off (policy 4.1).
LIMITED_STATES = frozenset({CallState.WAITING, CallState.RINGING, CallState.CONNECTED})


def ends_at_limit(state: CallState | None) -> bool:
    """Whether a call in this live state is ended when its agreed length is reached."""
    return state in LIMITED_STATES


def time_warning_words(limits_minutes: int | None = None) -> tuple[str, ...]:
    """What the caller hears two minutes before the agreed length of their call."""
    agreed = f"up to {limits_minutes} minutes" if limits_minutes else "a set length"
    return ("This call will end in about two minutes: as we agreed with you in writing, your "
            f"calls last {agreed}.",
            "Please use the time left to tell us anything else you need.")


def time_closing_words(written_contact: str) -> tuple[str, ...]:
    """What the caller hears when the agreed length of their call is reached, before it ends."""
    words = ["We have now reached the length of call we agreed with you in writing, so we are "
             "ending this call. Thank you for calling."]
    if written_contact:
        words.append(f"You can also write to us at: {written_contact}")
    words.append("Goodbye.")
    return tuple(words)
