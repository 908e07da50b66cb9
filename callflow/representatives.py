"""A person's representatives and advocates, and whether the restriction covers them.

Policy 2.2 and 4.6 reach "customers or their representatives", but the LGSCO warns against
restricting a representative without good reason: each one is covered only when the manager
says so, and a call from an uncovered representative goes to the centre as normal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from callflow.phone import InvalidNumber, normalise

COVERED = "covered"
NOT_COVERED = "not covered"
NAME_MAX = 200
RELATIONSHIP_MAX = 100
# How the written form is laid out, for messages that say how to fix it.
LAYOUT = "Name | relationship | numbers separated by commas | covered or not covered"


@dataclass(frozen=True)
class Representative:
    """Someone who contacts us for the person: a relative, an advocate, a councillor."""

    name: str
    relationship: str
    phone_numbers: tuple[str, ...] = ()
    covered: bool = False  # does the restriction's arrangements apply to their calls

    def __str__(self) -> str:
        return " | ".join((self.name, self.relationship, ", ".join(self.phone_numbers),
                           COVERED if self.covered else NOT_COVERED))

    @property
    def description(self) -> str:
        """The representative as staff read them."""
        return f"{self.name} ({self.relationship})"


def _covered(text: str) -> bool | None:
    cleaned = " ".join(text.lower().replace("_", " ").split())
    if cleaned in (COVERED, "yes", "y", "true", "1"):
        return True
    if cleaned in (NOT_COVERED, "", "no", "n", "false", "0", "uncovered"):
        return False
    return None


def parse_representatives(text: str) -> tuple[tuple[Representative, ...], list[str]]:
    """Representatives written one after another separated by semicolons, each as
    `Name | relationship | numbers | covered`, and every problem found."""
    found: list[Representative] = []
    errors: list[str] = []
    for position, part in enumerate((p.strip() for p in text.split(";") if p.strip()), 1):
        cells = [c.strip() for c in part.split("|")]
        which = f"representative {position}"
        if len(cells) != 4:
            errors.append(f"{which} ({cells[0]!r}): write it as {LAYOUT}")
            continue
        name, relationship, numbers_text, covered_text = cells
        if name:
            which = f"representative {position} ({name})"
        problems = []
        if not name:
            problems.append(f"{which}: the name is required")
        elif len(name) > NAME_MAX:
            problems.append(f"{which}: the name must be {NAME_MAX} characters or fewer")
        if not relationship:
            problems.append(f"{which}: say how they are related to the person, "
                            "for example advocate, daughter or councillor")
        elif len(relationship) > RELATIONSHIP_MAX:
            problems.append(f"{which}: the relationship must be {RELATIONSHIP_MAX} characters "
                            "or fewer")
        numbers: list[str] = []
        for raw in (n.strip() for n in numbers_text.split(",") if n.strip()):
            try:
                number = normalise(raw)
            except InvalidNumber as error:
                problems.append(f"{which}: {error}")
                continue
            if number not in numbers:
                numbers.append(number)
        covered = _covered(covered_text)
        if covered is None:
            problems.append(f"{which}: {covered_text!r}: write covered or not covered")
        if problems:
            errors += problems
            continue
        found.append(Representative(name, relationship, tuple(numbers), bool(covered)))
    return tuple(found), errors


def representatives_text(representatives: Iterable[Representative]) -> str:
    """The written form parse_representatives reads back to the same values."""
    return "; ".join(str(r) for r in representatives)


def representative_problems(representatives: Iterable[Representative],
                            own_numbers: Iterable[str]) -> list[str]:
    """A representative's number is theirs, not the person's, and is listed once."""
    own = set(own_numbers)
    seen: set[str] = set()
    problems = []
    for rep in representatives:
        for number in rep.phone_numbers:
            if number in own:
                problems.append(f"{rep.name}: {number} is also one of the person's own numbers; "
                                "a number belongs to one of them")
            elif number in seen:
                problems.append(f"{rep.name}: {number} is given for two representatives")
            seen.add(number)
    return problems


def representative_for(representatives: Iterable[Representative],
                       number: str | None) -> Representative | None:
    """The representative who calls from this E.164 number, if any."""
    if not number:
        return None
    return next((r for r in representatives if number in r.phone_numbers), None)


def representative_of(person_name: str, customer_ref: str) -> str:
    """What an agent reads for a representative's call: whose representative they are."""
    return f"representative of {person_name.strip() or customer_ref}"
