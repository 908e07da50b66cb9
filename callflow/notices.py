"""When a customer must be sent a new restriction notice (policy 5.1)."""

from __future__ import annotations

from collections.abc import Iterable

# What the restriction notice tells the customer; a change to any of these needs a new letter.
NOTIFIED_FIELDS = frozenset({
    "categories", "reason", "written_only", "call_windows", "designated_contact", "fallback",
    "visits_by_appointment", "closed_issues", "starts_on", "ends_on", "review_on",
})


def needs_new_notice(changes: Iterable[str]) -> bool:
    """True when audited changes alter what the customer was told (policy 5.1)."""
    return bool(NOTIFIED_FIELDS & set(changes))
