"""The decision core: what happens to an incoming call, as a pure function of plain values."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from enum import StrEnum

from callflow import events
from callflow.call_limits import LaterStep, next_call_from, steps_for_call
from callflow.effects import CallEffect, DialPerson, DialPool, Leg
from callflow.events import Event, EventKind
from callflow.register import Restriction
from callflow.schedule import (
    Opening,
    WeeklySchedule,
    current_opening,
    next_opening,
    parse_schedule,
)
from callflow.speech import spoken_next_start, spoken_opening

EMERGENCY_DIGIT = "1"


class Outcome(StrEnum):
    """What callflow decided for a call; the call log's decision column."""

    CENTRE = "centre"
    WITHHELD = "withheld"
    REGISTER_CHECK_FAILED = "register_check_failed"
    WITHIN_WINDOW = "within_window"
    DESIGNATED_CONTACT = "designated_contact"
    OUTSIDE_WINDOW = "outside_window"
    WRITTEN_ONLY = "written_only"
    CLOSED = "closed"
    OVER_CALL_LIMIT = "over_call_limit"  # policy 4.6: more calls than agreed this day/week
    EMERGENCY = "emergency"

    @property
    def connects(self) -> bool:
        """True when the caller is put through to a person at the centre."""
        return self in _CONNECTING


_CONNECTING = frozenset({Outcome.CENTRE, Outcome.WITHHELD, Outcome.REGISTER_CHECK_FAILED,
                         Outcome.WITHIN_WINDOW, Outcome.DESIGNATED_CONTACT})


@dataclass(frozen=True)
class Centre:
    """The contact centre's arrangements, from configuration."""

    opening_hours: WeeklySchedule
    tz: tzinfo
    bank_holidays: frozenset[date] = frozenset()
    windows_on_bank_holidays: bool = False
    emergency_number: str = ""
    written_contact: str = ""

    @classmethod
    def from_text(cls, opening_hours: str, tz: tzinfo, **kwargs: object) -> Centre:
        """A Centre from the opening-hours syntax of configuration."""
        return cls(opening_hours=parse_schedule(opening_hours), tz=tz, **kwargs)

    @property
    def emergency_offered(self) -> bool:
        """The emergency-repair option is on unless no emergency line is configured."""
        return bool(self.emergency_number)


@dataclass(frozen=True)
class Caller:
    """The caller as the register lookup found them."""

    call_sid: str
    number: str | None
    called: str = ""
    withheld: bool = False
    restriction: Restriction | None = None
    lookup_failed: bool = False
    lookup_source: str = ""
    recent_calls: tuple[datetime, ...] = ()  # calls put through lately (frequency limits)


@dataclass(frozen=True)
class Decision:
    """What to do with the call, what to tell the caller, and what to record."""

    outcome: Outcome
    reason: str
    message: tuple[str, ...] = ()
    offer_emergency: bool = False  # on every restricted path while an emergency line is set
    staff_id: int | None = None
    fallback_staff_id: int | None = None
    fallback_voicemail: bool = False
    events: tuple[Event, ...] = ()
    effects: tuple[CallEffect, ...] = ()  # who to ring first, for a caller put through
    later: tuple[LaterStep, ...] = ()  # call limits' steps, for a caller put through (4.6)

    @property
    def connects(self) -> bool:
        """True when the caller is put through to a person."""
        return self.outcome.connects


def decide(caller: Caller, centre: Centre, now: datetime, digits: str = "") -> Decision:
    """Decide what happens to a call; the caller's key presses so far are in digits."""
    decision = _decide(caller, centre, now, digits)
    recorded: list[Event] = []
    if not digits:
        restriction = caller.restriction
        recorded += [
            events.received(now, caller.number, caller.called, caller.withheld),
            events.looked_up(now, caller.lookup_source, caller.lookup_failed,
                             restriction.entry_id if restriction else None),
        ]
    detail: dict[str, object] = {"outcome": decision.outcome.value, "reason": decision.reason}
    if decision.staff_id is not None:
        detail["staff_id"] = decision.staff_id
    if decision.outcome is Outcome.EMERGENCY:
        recorded.append(Event(EventKind.EMERGENCY, "emergency", now, detail))
    else:
        recorded.append(Event(EventKind.DECISION, f"menu:{digits}" if digits else "decision",
                              now, detail))
    return replace(decision, events=tuple(recorded), effects=_first_ring(decision),
                   later=_later(caller, decision, now))


_RING_THE_POOL = (DialPool(0),)


def _first_ring(decision: Decision) -> tuple[CallEffect, ...]:
    if not decision.connects:
        return ()
    if decision.outcome is Outcome.DESIGNATED_CONTACT and decision.staff_id is not None:
        return (DialPerson(decision.staff_id, Leg.DESIGNATED),)
    return _RING_THE_POOL


def _decide(caller: Caller, centre: Centre, now: datetime, digits: str) -> Decision:
    if digits == EMERGENCY_DIGIT and centre.emergency_offered:
        # The emergency option is never taken away by a restriction.
        return Decision(Outcome.EMERGENCY, "caller pressed 1 for an emergency repair")
    today = now.astimezone(centre.tz).date()
    restriction = caller.restriction
    if restriction is not None and not restriction.applies_on(today):
        restriction = None
    uncovered = restriction is not None and restriction.representative and not (
        restriction.covered)
    if uncovered:
        restriction = None  # the LGSCO: a representative is restricted only if covered
    centre_open = current_opening(centre.opening_hours, now, centre.tz, centre.bank_holidays)

    if restriction is not None:
        return _restricted(restriction, centre, now, centre_open is not None,
                           caller.recent_calls)
    if centre_open is None:
        return _closed(centre, now)
    if caller.lookup_failed:
        return Decision(Outcome.REGISTER_CHECK_FAILED,
                        "register could not be read; routed as normal")
    if caller.withheld:
        return Decision(Outcome.WITHHELD, "number withheld; routed as normal")
    if uncovered:
        return Decision(Outcome.CENTRE, "a representative the restriction does not cover; "
                                        "routed as normal")
    return Decision(Outcome.CENTRE, "not restricted")


def _restricted(restriction: Restriction, centre: Centre, now: datetime,
                centre_open: bool, recent_calls: tuple[datetime, ...] = ()) -> Decision:
    entry = f"register entry {restriction.entry_id}"
    if restriction.written_only:
        return Decision(
            Outcome.WRITTEN_ONLY, f"{entry}: written contact only (policy 4.2)",
            message=_written_only_message(centre), offer_emergency=centre.emergency_offered,
        )
    if restriction.call_windows:
        windows = parse_schedule(restriction.call_windows)
        closed = frozenset() if centre.windows_on_bank_holidays else centre.bank_holidays
        if current_opening(windows, now, centre.tz, closed) is None:
            upcoming = next_opening(windows, now, centre.tz, closed)
            return Decision(
                Outcome.OUTSIDE_WINDOW, f"{entry}: outside the agreed call times (policy 4.6)",
                message=_outside_window_message(centre, upcoming, now),
                offer_emergency=centre.emergency_offered,
            )
        if centre.windows_on_bank_holidays:
            centre_open = current_opening(centre.opening_hours, now, centre.tz) is not None
    allowed_from = next_call_from(restriction.call_limits, recent_calls, now, centre.tz)
    if allowed_from is not None:
        return Decision(
            Outcome.OVER_CALL_LIMIT, f"{entry}: over the agreed number of calls (policy 4.6)",
            message=_over_limit_message(centre, restriction, allowed_from, now),
            offer_emergency=centre.emergency_offered,
        )
    if not centre_open:
        return _closed(centre, now)
    if restriction.designated_contact_id is not None:
        # policy 4.1: an unanswered designated contact falls back, so a route always remains.
        return Decision(
            Outcome.DESIGNATED_CONTACT, f"{entry}: to the designated point of contact (4.6)",
            staff_id=restriction.designated_contact_id,
            fallback_staff_id=restriction.fallback_contact_id,
            fallback_voicemail=restriction.fallback_contact_id is None,
            offer_emergency=centre.emergency_offered,
        )
    # policy 4.1: a restricted caller put through is still offered the emergency line first.
    return Decision(Outcome.WITHIN_WINDOW, f"{entry}: within the agreed call times",
                    offer_emergency=centre.emergency_offered)


def _later(caller: Caller, decision: Decision, now: datetime) -> tuple[LaterStep, ...]:
    restriction = caller.restriction
    if restriction is None or decision.outcome not in _RESTRICTED_CONNECTING:
        return ()
    return steps_for_call(restriction.call_limits, restriction.entry_id, now)


_RESTRICTED_CONNECTING = frozenset({Outcome.WITHIN_WINDOW, Outcome.DESIGNATED_CONTACT})


def _over_limit_message(centre: Centre, restriction: Restriction, allowed_from: datetime,
                        now: datetime) -> tuple[str, ...]:
    limits = restriction.call_limits
    message = ["Thank you for calling. As we agreed with you in writing, we take up to "
               f"{limits.frequency_words} from you, and you have reached that "
               f"{limits.per.this_period}."]
    hours = parse_schedule(restriction.call_windows) if restriction.call_windows else (
        centre.opening_hours)
    closed = frozenset() if restriction.call_windows and centre.windows_on_bank_holidays else (
        centre.bank_holidays)
    opening = next_opening(hours, allowed_from, centre.tz, closed)
    if opening is not None:
        if opening.start < allowed_from:  # open at midnight: from the start of the new period
            opening = Opening(allowed_from, opening.end)
        when = spoken_next_start(opening, now, centre.tz)
        message.append(_sentence(f"You can call us again {when}"))
    message.append(f"You can also write to us at: {centre.written_contact}")
    return tuple(message)


def _closed(centre: Centre, now: datetime) -> Decision:
    opening = next_opening(centre.opening_hours, now, centre.tz, centre.bank_holidays)
    message = ["Thank you for calling. Our contact centre is closed at the moment."]
    if opening is not None:
        message.append(_sentence(f"We open again {spoken_next_start(opening, now, centre.tz)}"))
    return Decision(Outcome.CLOSED, "outside opening hours or a bank holiday",
                    message=tuple(message), offer_emergency=centre.emergency_offered)


def _sentence(text: str) -> str:
    return text if text.endswith(".") else f"{text}."


def _written_only_message(centre: Centre) -> tuple[str, ...]:
    return (
        "Thank you for calling. We have written to you to ask that you contact us in writing, "
        "so we are not able to take your call.",
        f"You can write to us at: {centre.written_contact}",
        "We will reply to you in writing.",
    )


def _outside_window_message(centre: Centre, upcoming, now: datetime) -> tuple[str, ...]:
    message = ["Thank you for calling. As we agreed with you in writing, we take your calls "
               "at set times."]
    if upcoming is not None:
        when = spoken_opening(upcoming, now, centre.tz)
        message.append(_sentence(f"You can next call us {when}"))
    message.append(f"You can also write to us at: {centre.written_contact}")
    return tuple(message)


EMERGENCY_OFFER = (
    "If you are reporting an emergency repair, such as a gas or water leak, flooding, "
    "or loss of heating or power, press 1 now."
)


def voicemail_offers_emergency(restricted: bool, centre: Centre) -> bool:
    """Whether the voicemail prompt offers the emergency option before the tone (policy 4.1)."""
    # A restricted caller may have waited for their designated contact and fallback in vain:
    # the emergency option is never taken away from them.
    return restricted and centre.emergency_offered
