"""What callflow holds against a customer: warned and ended calls, incidents, warning letters.

Linked by the customer's numbers (every number their entry has held, and any given now), by the
entry the call log tied a call to, and by their reference (warning letters, agents' proposals).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callflow.evidence import Evidence, EvidenceCounts, EvidenceKind
from store.call_queries import person_scope
from store.models import Call, Incident, Notice, Proposal


@dataclass(frozen=True)
class LinkedCall:
    """A call from the customer on which they were warned, or which staff ended."""

    call_sid: str
    started_at: datetime | None
    warned: bool
    ended_by_agent: bool


@dataclass(frozen=True)
class LinkedIncident:
    """An incident reported on one of the customer's calls."""

    id: int
    call_sid: str
    reported_at: datetime
    category: str


@dataclass(frozen=True)
class LinkedLetter:
    """A warning letter produced for the customer."""

    id: int
    produced_at: datetime
    sent_on: date | None


@dataclass(frozen=True)
class EvidenceLinks:
    """Everything linked to one customer that a restriction may cite."""

    calls: tuple[LinkedCall, ...] = ()
    incidents: tuple[LinkedIncident, ...] = ()
    warning_letters: tuple[LinkedLetter, ...] = ()

    @property
    def counts(self) -> EvidenceCounts:
        """How many of each, for the entry's page."""
        return EvidenceCounts(
            warned_calls=sum(1 for c in self.calls if c.warned),
            ended_calls=sum(1 for c in self.calls if c.ended_by_agent),
            incidents=len(self.incidents),
            warning_letters=len(self.warning_letters),
        )

    @property
    def citable(self) -> frozenset[Evidence]:
        """Each link as the evidence a restriction may cite."""
        return frozenset(
            [Evidence(EvidenceKind.CALL, c.call_sid) for c in self.calls]
            + [Evidence(EvidenceKind.INCIDENT, str(i.id)) for i in self.incidents]
            + [Evidence(EvidenceKind.WARNING_LETTER, str(n.id)) for n in self.warning_letters]
        )

    @property
    def warning_letter_sent(self) -> date | None:
        """The day the latest warning letter was sent, or None."""
        sent = [n.sent_on for n in self.warning_letters if n.sent_on is not None]
        return max(sent) if sent else None


def evidence_links(session: Session, customer_ref: str,
                   numbers: Iterable[str] = ()) -> EvidenceLinks:
    """What is linked to the customer by reference and by number (numbers: E.164, any not yet
    on their entry, such as those of an entry being created)."""
    wanted = list(dict.fromkeys(numbers))
    scope = person_scope(session, customer_ref) if customer_ref else None
    entry_id = scope[0] if scope else None
    if scope:
        wanted = list(dict.fromkeys([*scope[1], *wanted]))
    proposed = select(Proposal.call_sid).where(Proposal.customer_ref == customer_ref,
                                               Proposal.call_sid.is_not(None))
    linked = [Call.call_sid.in_(proposed)] if customer_ref else []
    if wanted:
        linked.append(Call.from_number.in_(wanted))
    if entry_id is not None:
        linked.append(Call.entry_id == entry_id)
    calls: list[LinkedCall] = []
    incidents: list[LinkedIncident] = []
    if linked:
        their_calls = select(Call.call_sid).where(or_(*linked))
        calls = [LinkedCall(sid, started, bool(warned), bool(ended)) for sid, started, warned, ended
                 in session.execute(
                     select(Call.call_sid, Call.started_at, Call.warned, Call.ended_by_agent)
                     .where(or_(*linked), or_(Call.warned, Call.ended_by_agent))
                     .order_by(Call.started_at, Call.id))]
        incidents = [LinkedIncident(i.id, i.call_sid, i.reported_at, i.category)
                     for i in session.scalars(
                         select(Incident).where(Incident.call_sid.in_(their_calls))
                         .order_by(Incident.reported_at, Incident.id))]
    letters = [LinkedLetter(n.id, n.produced_at, n.sent_on) for n in session.scalars(
        select(Notice).where(Notice.customer_ref == customer_ref, Notice.kind == "warning",
                             Notice.withdrawn_at.is_(None))
        .order_by(Notice.produced_at, Notice.id))] if customer_ref else []
    return EvidenceLinks(tuple(calls), tuple(incidents), tuple(letters))


# Well under every database's limit on bound parameters (SQLite's is 999 before 3.32).
_PER_QUERY = 500


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _PER_QUERY):
        yield ordered[start:start + _PER_QUERY]


def warning_letters_sent(session: Session, customer_refs: Iterable[str]) -> dict[str, date]:
    """For each reference with a warning letter sent (and not withdrawn), the latest day sent."""
    sent: dict[str, date] = {}
    for refs in _chunks(customer_refs):
        for ref, day in session.execute(
            select(Notice.customer_ref, Notice.sent_on).where(
                Notice.customer_ref.in_(refs), Notice.kind == "warning",
                Notice.sent_on.is_not(None), Notice.withdrawn_at.is_(None))
        ):
            sent[ref] = max(day, sent.get(ref, day))
    return sent


def citable_evidence(session: Session, wanted: Iterable[tuple[str, tuple[str, ...]]],
                     ) -> dict[str, frozenset[Evidence]]:
    """For (reference, numbers) pairs of entries not yet on the register, what each may cite:
    warned or ended calls from those numbers or proposed under that reference, the incidents
    on any of their calls, and their warning letters. A few queries for the whole batch."""
    pairs = list(wanted)
    refs_of_number: dict[str, set[str]] = {}
    for ref, numbers in pairs:
        for number in numbers:
            refs_of_number.setdefault(number, set()).add(ref)
    refs = {ref for ref, _numbers in pairs}
    # Each call of theirs: (sid, warned or ended), and whose it is.
    owners: dict[str, set[str]] = {}
    flagged: set[str] = set()
    for numbers in _chunks(refs_of_number):
        for sid, number, marked in session.execute(
            select(Call.call_sid, Call.from_number, Call.warned | Call.ended_by_agent)
            .where(Call.from_number.in_(numbers))
        ):
            owners.setdefault(sid, set()).update(refs_of_number[number])
            if marked:
                flagged.add(sid)
    for chunk in _chunks(refs):
        for sid, ref, marked in session.execute(
            select(Call.call_sid, Proposal.customer_ref, Call.warned | Call.ended_by_agent)
            .join(Proposal, Proposal.call_sid == Call.call_sid)
            .where(Proposal.customer_ref.in_(chunk))
        ):
            owners.setdefault(sid, set()).add(ref)
            if marked:
                flagged.add(sid)
    found: dict[str, set[Evidence]] = {ref: set() for ref in refs}
    for sid in flagged:
        for ref in owners[sid]:
            found[ref].add(Evidence(EvidenceKind.CALL, sid))
    for sids in _chunks(owners):
        for incident_id, sid in session.execute(
            select(Incident.id, Incident.call_sid).where(Incident.call_sid.in_(sids))
        ):
            for ref in owners[sid]:
                found[ref].add(Evidence(EvidenceKind.INCIDENT, str(incident_id)))
    for chunk in _chunks(refs):
        for notice_id, ref in session.execute(
            select(Notice.id, Notice.customer_ref).where(
                Notice.customer_ref.in_(chunk), Notice.kind == "warning",
                Notice.withdrawn_at.is_(None))
        ):
            found[ref].add(Evidence(EvidenceKind.WARNING_LETTER, str(notice_id)))
    return {ref: frozenset(items) for ref, items in found.items()}
