"""Appeals against a restriction: what is recorded, who may decide, and when one is late.

The restriction notice promises that "a manager who was not involved in the decision will look
at it again" (policy 5.2: managers decide); the Housing Ombudsman's Complaint Handling Code
expects a fair, timely hearing and the Ombudsman named as the next step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from callflow.register import FieldError
from callflow.roles import Capability, may

DEFAULT_APPEAL_DAYS = 28  # calendar days from receipt to decision


class Channel(StrEnum):
    """How an appeal reached us."""

    LETTER = "letter"
    EMAIL = "email"
    PHONE = "phone"


class AppealOutcome(StrEnum):
    """What the manager hearing an appeal decided."""

    UPHELD = "upheld"  # the restriction stands as it is
    VARIED = "varied"  # the arrangements change (the entry's edit form follows)
    QUASHED = "quashed"  # the restriction is lifted

    @property
    def label(self) -> str:
        """How staff read the outcome."""
        return APPEAL_OUTCOME_LABELS[self]


APPEAL_OUTCOME_LABELS = {
    AppealOutcome.UPHELD: "Upheld: the restriction stays as it is",
    AppealOutcome.VARIED: "Varied: the arrangements change",
    AppealOutcome.QUASHED: "Quashed: the restriction is lifted",
}


@dataclass(frozen=True)
class AppealReceipt:
    """An appeal as staff record it when it arrives."""

    received_on: date
    channel: Channel
    grounds: str


def read_receipt(values: Mapping[str, str], today: date
                 ) -> tuple[AppealReceipt | None, list[FieldError]]:
    """Typed receipt from text fields (a form, the command line), with every error found."""
    errors: list[FieldError] = []
    received_on = None
    raw = (values.get("received_on") or "").strip()
    if not raw:
        errors.append(FieldError("received_on", "is required"))
    else:
        try:
            received_on = date.fromisoformat(raw)
        except ValueError:
            errors.append(FieldError("received_on", f"{raw!r} is not a date (use 2026-12-01)"))
        else:
            if received_on > today:
                errors.append(FieldError("received_on", "cannot be in the future"))
    channel = None
    raw_channel = (values.get("channel") or "").strip().lower()
    try:
        channel = Channel(raw_channel)
    except ValueError:
        errors.append(FieldError("channel", "choose letter, email or phone"))
    grounds = (values.get("grounds") or "").strip()
    if not grounds:
        errors.append(FieldError("grounds", "say why the customer disagrees, in their words "
                                            "where you can"))
    if errors:
        return None, errors
    return AppealReceipt(received_on, channel, grounds), []


def decide_by(received_on: date, within_days: int = DEFAULT_APPEAL_DAYS) -> date:
    """The day an appeal received on `received_on` should be decided by."""
    return received_on + timedelta(days=within_days)


def is_late(received_on: date, decided: bool, today: date,
            within_days: int = DEFAULT_APPEAL_DAYS) -> bool:
    """True when an appeal is still undecided after its decide-by date."""
    return not decided and today > decide_by(received_on, within_days)


def involvement_problem(decider: str, decider_role: str | None, decided_by: str,
                        last_reviewed_by: str | None) -> str | None:
    """Why this person may not decide the appeal, or None when they may.

    Only a manager decides (policy 5.2), and never one who decided the restriction or last
    reviewed it: the customer was promised someone not involved.
    """
    if not may(decider_role, Capability.DECIDE_RESTRICTIONS):
        return f"{decider} is not a manager; only a manager decides an appeal (policy 5.2)"
    if decider == decided_by:
        return (f"{decider} decided this restriction; a manager who was not involved must "
                "decide the appeal")
    if last_reviewed_by and decider == last_reviewed_by:
        return (f"{decider} carried out the last review of this restriction; a manager who was "
                "not involved must decide the appeal")
    return None


@dataclass(frozen=True)
class AppealDecision:
    """What the manager hearing an appeal decided."""

    outcome: AppealOutcome
    reasons: str


def read_decision(values: Mapping[str, str]) -> tuple[AppealDecision | None, list[FieldError]]:
    """Typed decision from text fields, with every error found."""
    errors: list[FieldError] = []
    outcome = None
    try:
        outcome = AppealOutcome((values.get("outcome") or "").strip().lower())
    except ValueError:
        errors.append(FieldError("outcome", "choose upheld, varied or quashed"))
    reasons = (values.get("reasons") or "").strip()
    if not reasons:
        errors.append(FieldError("reasons", "say why you decided this; the customer is told"))
    if errors:
        return None, errors
    return AppealDecision(outcome, reasons), []
