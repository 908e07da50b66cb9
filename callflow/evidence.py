"""The evidence behind a restriction and the chance to change first (policy 5.1, 4.3).

A new restriction cites what it rests on (an incident, a call on which the person was warned or
which was ended, a warning letter, or a written record) and either follows a formal warning
letter or records why not (for example threats or violence, policy 4.3). Pure: the shell
gathers what is linked to the customer and whether a warning letter was sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class EvidenceKind(StrEnum):
    """What a piece of cited evidence is."""

    INCIDENT = "incident"  # an incident reported on a call (policy 4.3)
    CALL = "call"  # a call on which the person was warned, or which was ended (4.5)
    WARNING_LETTER = "warning letter"  # a formal warning letter produced by callflow (5.1)
    WRITTEN = "written"  # any other written record, e.g. a letter or an email received

    @property
    def label(self) -> str:
        """How staff read the kind."""
        return EVIDENCE_LABELS[self]


EVIDENCE_LABELS = {
    EvidenceKind.INCIDENT: "Incident",
    EvidenceKind.CALL: "Call",
    EvidenceKind.WARNING_LETTER: "Warning letter",
    EvidenceKind.WRITTEN: "Written record",
}
# How evidence is written in the form and the register CSV, one item per line or ";".
EVIDENCE_FORMS = ('"incident 12", "call CA…" (its call reference), "warning letter 5", or '
                  '"written: letter of 3 May about the noise complaints"')
_ITEM = re.compile(r"^(incident|call|warning letter|written)\s*:?\s*(.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence a restriction cites."""

    kind: EvidenceKind
    reference: str  # an incident or warning letter number, a call reference, or the record

    def __str__(self) -> str:
        if self.kind is EvidenceKind.WRITTEN:
            return f"written: {self.reference}"
        return f"{self.kind.value} {self.reference}"


@dataclass(frozen=True)
class EvidenceCounts:
    """How much is linked to a customer, for the entry's page."""

    warned_calls: int = 0
    ended_calls: int = 0
    incidents: int = 0
    warning_letters: int = 0

    @property
    def text(self) -> str:
        """The counts in words: "2 calls on which they were warned, no incidents, ..."."""
        def many(count: int, one: str, several: str) -> str:
            return f"1 {one}" if count == 1 else f"{count or 'no'} {several}"

        return ", ".join((
            many(self.warned_calls, "call on which they were warned",
                 "calls on which they were warned"),
            many(self.ended_calls, "call ended by staff", "calls ended by staff"),
            many(self.incidents, "incident", "incidents"),
            many(self.warning_letters, "warning letter", "warning letters"),
        ))


def parse_evidence(text: str) -> tuple[tuple[Evidence, ...], list[str]]:
    """Evidence items from text separated by ";" or new lines, and a message per bad item."""
    items: list[Evidence] = []
    problems: list[str] = []
    for raw in (p.strip() for p in text.replace("\n", ";").split(";")):
        if not raw:
            continue
        match = _ITEM.match(raw)
        if not match:
            problems.append(f'"{raw}" is not evidence callflow can read: write it as '
                            f'{EVIDENCE_FORMS}')
            continue
        kind = EvidenceKind(re.sub(r"\s+", " ", match.group(1).lower()))
        reference = match.group(2).strip()
        if kind in (EvidenceKind.INCIDENT, EvidenceKind.WARNING_LETTER) and not (
                reference.isdigit()):
            problems.append(f'"{raw}": give the {kind.value}\'s number, '
                            f'such as "{kind.value} 12"')
            continue
        item = Evidence(kind, reference)
        if item not in items:
            items.append(item)
    return tuple(items), problems


def evidence_text(items: Iterable[Evidence]) -> str:
    """Evidence as the register CSV writes it; parse_evidence reads it back."""
    return "; ".join(str(item) for item in items)


def evidence_problems(
    evidence: Iterable[Evidence],
    linked: Iterable[Evidence],
    warning_letter_sent: bool,
    no_warning_reason: str,
) -> list[tuple[str, str]]:
    """The rules a new restriction's evidence must meet, as (field, message) pairs.

    linked is the evidence callflow holds for the customer (by their numbers and reference);
    anything cited other than a written record must be among it.
    """
    cited = tuple(evidence)
    known = set(linked)
    problems: list[tuple[str, str]] = []
    if not cited:
        problems.append(("evidence", "cite the evidence this restriction rests on "
                                     "(policy 5.1): at least one incident, call, warning letter "
                                     f"or written record, such as {EVIDENCE_FORMS}"))
    for item in cited:
        if item.kind is not EvidenceKind.WRITTEN and item not in known:
            problems.append(("evidence", f"{item} is not linked to this customer's numbers "
                                         "or reference"))
    if not warning_letter_sent and not no_warning_reason.strip():
        problems.append(("no_warning_reason", "no formal warning letter has been sent to this "
                                              "customer: send one first to give them the chance "
                                              "to change (policy 5.1), or say why not, for "
                                              "example threats or violence (policy 4.3)"))
    return problems


def needs_evidence(creating: bool, lifted: bool, ended_before_today: bool) -> bool:
    """True when the evidence rule applies: a new restriction that is, or will be, in force."""
    return creating and not lifted and not ended_before_today
