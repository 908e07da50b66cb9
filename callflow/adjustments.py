"""A person's needs (reasonable adjustments, Equality Act 2010) as typed values and their rules.

An entry records what the person needs so that staff meet it on the phone and in writing, and a
restriction never takes away the one route the person can actually use (policy 4.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Need(StrEnum):
    """A reasonable adjustment a person has asked for or staff know they need."""

    LARGE_PRINT = "large_print"
    EASY_READ = "easy_read"
    BSL = "british_sign_language"
    RELAY_UK = "relay_uk"
    INTERPRETER = "interpreter"
    HELP_WITH_WRITING = "help_with_writing"
    OTHER = "other"

    @property
    def label(self) -> str:
        """How staff read the need."""
        return NEED_LABELS[self]


NEED_LABELS = {
    Need.LARGE_PRINT: "Large print",
    Need.EASY_READ: "Easy read",
    Need.BSL: "British Sign Language",
    Need.RELAY_UK: "Relay UK text relay",
    Need.INTERPRETER: "Interpreter",
    Need.HELP_WITH_WRITING: "Help with writing",
    Need.OTHER: "Other",
}
# Needs that are not complete without words: the interpreter's language, what "other" means.
NEEDS_DETAIL = {
    Need.INTERPRETER: "say which language, for example Interpreter: Polish",
    Need.OTHER: "say what is needed, for example Other: extra time to answer",
}
# Needs that say writing is a barrier for the person: written contact only would leave them
# no route they can use (policy 4.1). Easy read may be judged so too, so it counts.
WRITING_BARRIERS = frozenset({Need.HELP_WITH_WRITING, Need.EASY_READ})
DETAIL_MAX = 200


@dataclass(frozen=True)
class Adjustment:
    """One need, with its words where it has them (the language, what other means)."""

    need: Need
    detail: str = ""

    def __str__(self) -> str:
        # Written in words (the CSV, the audit trail): people read both.
        return self.label

    @property
    def label(self) -> str:
        """The need as staff read it, with its words."""
        return f"{self.need.label}: {self.detail}" if self.detail else self.need.label


def _need_of(text: str) -> Need | None:
    wanted = text.strip().lower().replace(" ", "_").replace("-", "_")
    for need in Need:
        if wanted in (need.value, need.label.lower().replace(" ", "_")):
            return need
    return {"bsl": Need.BSL, "relay": Need.RELAY_UK, "text_relay": Need.RELAY_UK}.get(wanted)


def parse_adjustments(text: str) -> tuple[tuple[Adjustment, ...], list[str]]:
    """Needs written as `large_print; interpreter: Polish; other: words`, and every problem."""
    found: list[Adjustment] = []
    errors: list[str] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, _sep, detail = part.partition(":")
        need = _need_of(name)
        detail = " ".join(detail.split())
        if need is None:
            allowed = ", ".join(n.label for n in Need)
            errors.append(f"{name.strip()!r} is not a need we record; use one of {allowed}")
            continue
        if need in NEEDS_DETAIL and not detail:
            errors.append(f"{need.label}: {NEEDS_DETAIL[need]}")
            continue
        if len(detail) > DETAIL_MAX:
            errors.append(f"{need.label}: the words must be {DETAIL_MAX} characters or fewer")
            continue
        adjustment = Adjustment(need, detail if need in NEEDS_DETAIL else "")
        if adjustment not in found:
            found.append(adjustment)
    return tuple(found), errors


def adjustments_text(adjustments: Iterable[Adjustment]) -> str:
    """The written form parse_adjustments reads back to the same values."""
    return "; ".join(str(a) for a in adjustments)


def writing_barrier(adjustments: Iterable[Adjustment]) -> tuple[Adjustment, ...]:
    """The adjustments that say writing is a barrier for the person."""
    return tuple(a for a in adjustments if a.need in WRITING_BARRIERS)


def wants_large_print(adjustments: Iterable[Adjustment]) -> bool:
    """True when letters to the person must come in large print."""
    return any(a.need is Need.LARGE_PRINT for a in adjustments)


def written_only_problem(written_only: bool, adjustments: Iterable[Adjustment],
                         exception: str) -> str | None:
    """policy 4.1 and the Equality Act: written-only contact cannot be chosen for a person for
    whom writing is a barrier, unless the manager records why and what replaces it."""
    barriers = writing_barrier(adjustments)
    if not written_only or not barriers or exception.strip():
        return None
    named = " and ".join(a.need.label.lower() for a in barriers)
    return (
        f"written contact only was chosen but the person needs {named}, so writing may be a "
        "barrier: choose call times or a designated contact instead, or say here why written "
        "contact only is still right and what replaces it (for example an advocate who writes "
        "for them)"
    )
