"""Reviews of a restriction: when one is due, what it may decide, and when it is overdue.

Every restriction is reviewed on time (policy 5.1: the customer is told how long it lasts; the
Housing Ombudsman and the LGSCO expect restrictions to be reviewed, not left to run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from callflow.register import FieldError
from callflow.review_dates import review_date_problem


class ReviewOutcome(StrEnum):
    """What a review decided."""

    CONTINUE = "continue"  # the arrangements stay; a new review date is set
    VARY = "vary"  # the arrangements change (the entry's edit form follows)
    LIFT = "lift"  # the restriction ends now

    @property
    def label(self) -> str:
        """How staff read the outcome."""
        return OUTCOME_LABELS[self]


OUTCOME_LABELS = {
    ReviewOutcome.CONTINUE: "Continue the restriction unchanged",
    ReviewOutcome.VARY: "Vary the arrangements",
    ReviewOutcome.LIFT: "Lift the restriction",
}


@dataclass(frozen=True)
class ReviewDecision:
    """What a manager decided at a review, as typed values."""

    outcome: ReviewOutcome
    reasons: str
    next_review_on: date | None = None


def check_review(decision: ReviewDecision, today: date, starts_on: date, ends_on: date,
                 max_months: int) -> list[FieldError]:
    """The rules a review's decision must meet; every problem at once.

    A continued (or varied) restriction needs reasons and a next review after today and no
    later than `max_months` from today (the review itself counts as the last review).
    """
    errors = []
    if not decision.reasons.strip():
        errors.append(FieldError("reasons", "say why you decided this"))
    if decision.outcome is ReviewOutcome.LIFT:
        return errors
    nxt = decision.next_review_on
    if nxt is None:
        errors.append(FieldError("review_on", "is required when the restriction continues"))
    elif nxt <= today:
        errors.append(FieldError("review_on", "the next review must be after today"))
    elif nxt > ends_on:
        errors.append(FieldError("review_on", f"must be on or before the end date, "
                                              f"{ends_on.isoformat()}"))
    else:
        problem = review_date_problem(starts_on, ends_on, nxt, max_months, today)
        if problem:
            errors.append(FieldError("review_on", problem))
    return errors


def is_overdue(review_on: date | None, today: date) -> bool:
    """True when a restriction's review date has passed without a review."""
    return review_on is not None and review_on < today


def lapses_unreviewed(review_on: date | None, today: date, after_days: int) -> bool:
    """True when a restriction left unreviewed `after_days` past its review date should lapse;
    `after_days` 0 means restrictions never lapse for want of a review."""
    return after_days > 0 and review_on is not None and today > review_on + timedelta(
        days=after_days)
