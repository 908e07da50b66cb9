"""Ending a call (policy 4.5, threats 4.3): the reasons, and what each end of call requires.

Pure: the shell gathers whether the caller was warned and who is on the call, asks `plan_end`,
and carries out the plan it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from callflow.announcement import WarningState
from callflow.register import CATEGORY_LABELS, Category


class EndReason(StrEnum):
    """Why a call was ended or an incident raised: a section 3 category, or threats (4.3)."""

    AGGRESSIVE_ABUSIVE = Category.AGGRESSIVE_ABUSIVE.value
    UNREASONABLE_DEMANDS = Category.UNREASONABLE_DEMANDS.value
    UNREASONABLE_PERSISTENCE = Category.UNREASONABLE_PERSISTENCE.value
    THREAT_OR_VIOLENCE = "threat_or_violence"

    @property
    def label(self) -> str:
        """How staff read the reason, with its policy paragraph."""
        return END_REASON_LABELS[self]

    @property
    def is_threat(self) -> bool:
        """Threats or violence: the call ends at once, without a warning (policy 4.3)."""
        return self is EndReason.THREAT_OR_VIOLENCE


END_REASON_LABELS: dict[EndReason, str] = {
    **{EndReason(category.value): text for category, text in CATEGORY_LABELS.items()},
    EndReason.THREAT_OR_VIOLENCE: "Threat or violence (4.3)",
}

# Every reason a call may be ended for; an incident may be raised under the same ones.
END_REASONS: tuple[EndReason, ...] = tuple(EndReason)
INCIDENT_CATEGORIES = END_REASONS
# A call ended in one click (after a warning) is given one of section 3's reasons as wrap-up.
WRAP_UP_REASONS: tuple[EndReason, ...] = tuple(r for r in EndReason if not r.is_threat)
# The console's incident form offers threats first: the report most often made at once.
INCIDENT_MENU: tuple[EndReason, ...] = (EndReason.THREAT_OR_VIOLENCE, *WRAP_UP_REASONS)


class EndRefusal(StrEnum):
    """Why a call cannot be ended as asked; the value is the message staff read."""

    ALREADY_ENDED = "call already ended"
    NOT_WARNED = "warn before ending"
    WARNING_PLAYING = ("the warning is still playing to the caller: end the call once it has "
                       "finished")
    WARNING_FAILED = ("the warning could not be played to the caller, so they have not heard "
                      "it: give the warning again before ending the call")
    REASON_NEEDED_NOW = ("give the reason now, as no member of staff is on the call to give "
                         "it afterwards")


class EndRefused(Exception):
    """plan_end refused: the call may not be ended as asked."""

    def __init__(self, refusal: EndRefusal):
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True)
class EndPlan:
    """What ending a call requires of the shell."""

    reason: EndReason | None
    # The caller hears the closing statement before the call ends (4.5); threats end at once.
    closing_statement: bool
    # Threats or violence are flagged for a manager, who reports violence to the police (4.3).
    opens_incident: bool
    # Ended in one click without a reason: the member of staff on the call owes it as wrap-up.
    wrap_up_owed: bool


def plan_end(reason: EndReason | None, warned: bool, *, ended: bool = False,
             staff_on_call: bool = True, warning: WarningState | None = None) -> EndPlan:
    """What ending the call for `reason` requires, or EndRefused when policy forbids it.

    `reason` None is the one-click end: allowed once warned, with the reason owed afterwards by
    the member of staff on the call (so someone must be on it). `warning` is where the last
    warning stands as Twilio reported it (None: not known, as before announcements were
    followed): the caller must have heard it.
    """
    if ended:
        raise EndRefused(EndRefusal.ALREADY_ENDED)
    threat = reason is not None and reason.is_threat
    if not threat and not warned:
        # Policy 4.5: tell the caller their behaviour is unacceptable before ending the call.
        raise EndRefused(EndRefusal.NOT_WARNED)
    if not threat and warning is WarningState.PLAYING:
        raise EndRefused(EndRefusal.WARNING_PLAYING)
    if not threat and warning is WarningState.FAILED:
        raise EndRefused(EndRefusal.WARNING_FAILED)
    if reason is None and not staff_on_call:
        raise EndRefused(EndRefusal.REASON_NEEDED_NOW)
    return EndPlan(reason=reason, closing_statement=not threat, opens_incident=threat,
                   wrap_up_owed=reason is None)


# Policy 4.5 and the sector's practice: after a call ended for abuse or threats, the member of
# staff is given time to recover before the next call, and colleagues are warned if it rings again.
ABUSE_REASONS: frozenset[EndReason] = frozenset(
    {EndReason.AGGRESSIVE_ABUSIVE, EndReason.THREAT_OR_VIOLENCE})


def calls_for_recovery(reason: EndReason | str | None) -> bool:
    """Whether a call ended for `reason` gives its member of staff time to recover."""
    return _as_reason(reason) in ABUSE_REASONS


def abuse_reason(reason: EndReason | str | None) -> EndReason | None:
    """The reason as an abuse or threats reason, or None when it is neither (or unknown)."""
    found = _as_reason(reason)
    return found if found in ABUSE_REASONS else None


def remembered_abuse(ended_at: datetime, now: datetime, memory_days: int) -> bool:
    """Whether a call ended for abuse at `ended_at` still warns colleagues at `now`.

    Colleagues are warned for `memory_days` after it (policy 5.2: highlighted to relevant
    staff); 0 turns the warning off.
    """
    return memory_days > 0 and now - timedelta(days=memory_days) <= ended_at <= now


def _as_reason(reason: EndReason | str | None) -> EndReason | None:
    if reason is None or isinstance(reason, EndReason):
        return reason
    try:
        return EndReason(reason)
    except ValueError:
        return None
