"""The evidence behind a restriction (policy 5.1): what is linked to a customer, and the rule a
new restriction meets before it is saved (see callflow/evidence.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from callflow.evidence import EvidenceKind, evidence_problems, needs_evidence
from callflow.register import EntryFields, FieldError
from store.evidence import EvidenceLinks, citable_evidence, evidence_links, warning_letters_sent

# An entry to judge: its fields, whether it is new, and the fields that could not be read.
Judged = tuple[EntryFields, bool, set[str] | frozenset[str]]


def evidence_of(sessions: sessionmaker[Session], customer_ref: str) -> EvidenceLinks:
    """Warned and ended calls, incidents and warning letters linked to a customer."""
    with sessions() as session:
        return evidence_links(session, customer_ref)


def _judged(fields: EntryFields, creating: bool, unreadable: set[str] | frozenset[str],
            today: date) -> bool:
    ended = fields.ends_on is not None and fields.ends_on < today
    return needs_evidence(creating, fields.lifted_at is not None, ended) and not (
        unreadable & {"customer_ref", "phone_numbers"})


def new_restriction_problems(session: Session, entries: Sequence[Judged],
                             today: date) -> list[list[FieldError]]:
    """Per entry, what a new restriction lacks: evidence it cites, linked to the customer, and
    a formal warning letter sent first or the reason why not (policy 5.1, 4.3); nothing for an
    entry already on the register, one lifted, or one that ended before today.

    One batch of queries for them all, and only for what they need: a written record and a
    reason for no warning letter need none (an import of a million rows stays fast).
    """
    judged = [_judged(fields, creating, bad, today) for fields, creating, bad in entries]
    asking = [fields for (fields, _c, _b), j in zip(entries, judged, strict=True) if j]
    unwarned = {f.customer_ref for f in asking if not f.no_warning_reason.strip()}
    sent = warning_letters_sent(session, unwarned) if unwarned else {}
    citing = [(f.customer_ref, f.phone_numbers) for f in asking
              if any(e.kind is not EvidenceKind.WRITTEN for e in f.evidence)]
    citable = citable_evidence(session, citing) if citing else {}
    found: list[list[FieldError]] = []
    for (fields, _creating, bad), applies in zip(entries, judged, strict=True):
        if not applies:
            found.append([])
            continue
        found.append([FieldError(name, message) for name, message in evidence_problems(
            fields.evidence, citable.get(fields.customer_ref, frozenset()),
            fields.customer_ref in sent, fields.no_warning_reason) if name not in bad])
    return found
