"""Triage of what restricted callers leave: every voicemail or message is read and answered.

A restriction limits how a person contacts us, never whether we listen: policy 4.7 says a new,
unrelated report will be considered, and only the same closed issue without new information is
left unanswered. Each item is due within a set number of days and records who handled it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

DEFAULT_DUE_DAYS = 5
NOTES_MAX = 4000


class TriageSource(StrEnum):
    """How the item reached us."""

    VOICEMAIL = "voicemail"
    MESSAGE = "message"

    @property
    def label(self) -> str:
        """How staff read the source."""
        return {TriageSource.VOICEMAIL: "Voicemail", TriageSource.MESSAGE: "Message"}[self]


class TriageOutcome(StrEnum):
    """What staff found the item to be."""

    NEW_INFORMATION = "new_information"
    NEW_ISSUE = "new_issue"
    SAFEGUARDING = "safeguarding"
    SAME_CLOSED_ISSUE = "same_closed_issue"

    @property
    def label(self) -> str:
        """How staff read the outcome."""
        return OUTCOME_LABELS[self]

    @property
    def next_step(self) -> str:
        """What follows from the outcome, as staff read it."""
        return NEXT_STEPS[self]


OUTCOME_LABELS = {
    TriageOutcome.NEW_INFORMATION: "New information about a closed issue",
    TriageOutcome.NEW_ISSUE: "A new, unrelated issue",
    TriageOutcome.SAFEGUARDING: "A safeguarding concern",
    TriageOutcome.SAME_CLOSED_ISSUE: "The same closed issue, nothing new",
}
NEXT_STEPS = {
    TriageOutcome.NEW_INFORMATION: "Pass it to the manager who closed the issue to consider.",
    TriageOutcome.NEW_ISSUE: "Log it as a new report: policy 4.7 says it will be considered.",
    TriageOutcome.SAFEGUARDING: "Raise it with the safeguarding lead today.",
    TriageOutcome.SAME_CLOSED_ISSUE: "No reply is needed (policy 4.7).",
}
# Outcomes that need a word on what was done, so that the next person can follow it up.
NEEDS_NOTES = frozenset({TriageOutcome.NEW_INFORMATION, TriageOutcome.NEW_ISSUE,
                         TriageOutcome.SAFEGUARDING})


@dataclass(frozen=True)
class TriageDecision:
    """What a member of staff recorded about one item."""

    outcome: TriageOutcome
    notes: str = ""


def due_on(received_on: date, due_days: int) -> date:
    """The day by which an item received on received_on must be triaged."""
    return received_on + timedelta(days=due_days)


def is_overdue(due: date, today: date, handled: bool) -> bool:
    """True when an item not yet handled has passed its due date."""
    return not handled and today > due


def read_decision(outcome: str, notes: str) -> tuple[TriageDecision | None, list[tuple[str, str]]]:
    """A decision from a form's text, or every problem as (field, message), all at once."""
    problems: list[tuple[str, str]] = []
    chosen: TriageOutcome | None = None
    try:
        chosen = TriageOutcome(outcome.strip())
    except ValueError:
        problems.append(("outcome", "choose what the message was: "
                                    + ", ".join(o.label.lower() for o in TriageOutcome)))
    cleaned = notes.strip()
    if len(cleaned) > NOTES_MAX:
        problems.append(("notes", f"Notes must be {NOTES_MAX} characters or fewer"))
    elif chosen in NEEDS_NOTES and not cleaned:
        problems.append(("notes", f"say what was done about it ({chosen.label.lower()})"))
    if problems or chosen is None:
        return None, problems
    return TriageDecision(chosen, cleaned), []
