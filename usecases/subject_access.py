"""Everything callflow holds about one person, for a subject access request."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session, sessionmaker

from store import recordings as call_recordings
from store.call_queries import person_scope
from store.evidence import EvidenceLinks, evidence_links
from store.models import (
    Appeal,
    AuditRecord,
    Call,
    CallEvent,
    DeadLetter,
    Incident,
    Notice,
    Proposal,
    Review,
    Staff,
)
from store.register import RegisterStore, fields_of
from store.triage import items_for as triage_items_for
from usecases.notices import KIND_TITLES


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(obj: object, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of a model instance, as JSON-ready values."""
    mapper = inspect(obj).mapper
    return {c.key: _plain(getattr(obj, c.key)) for c in mapper.column_attrs if c.key not in skip}


def letters_summary(notices: Iterable[Notice]) -> list[dict[str, Any]]:
    """Each letter written to the person: what kind, when written, sent or withdrawn."""
    return [{"id": n.id, "kind": KIND_TITLES.get(n.kind, n.kind),
             "produced_on": n.produced_at.date().isoformat(),
             "sent_on": _plain(n.sent_on),
             "withdrawn_on": n.withdrawn_at.date().isoformat() if n.withdrawn_at else None}
            for n in notices]


def evidence_summary(cited: Iterable[dict[str, str]], links: EvidenceLinks) -> dict[str, Any]:
    """The evidence their restriction cites, and the calls, incidents and warning letters
    linked to them by number and reference."""
    return {
        "cited": [dict(item) for item in cited],
        "calls_warned_or_ended": [{"call_sid": c.call_sid, "started_at": _plain(c.started_at),
                                   "warned": c.warned, "ended_by_staff": c.ended_by_agent}
                                  for c in links.calls],
        "incidents": [{"id": i.id, "call_sid": i.call_sid, "reported_at": _plain(i.reported_at),
                       "category": i.category} for i in links.incidents],
        "warning_letters": [{"id": n.id, "produced_at": _plain(n.produced_at),
                             "sent_on": _plain(n.sent_on)} for n in links.warning_letters],
    }


def subject_access(sessions: sessionmaker[Session], customer_ref: str) -> dict[str, Any] | None:
    """Everything held under a reference, JSON-ready; None when nothing is held."""
    with sessions() as session:
        scope = person_scope(session, customer_ref)
        entry = RegisterStore(session).get(customer_ref)
        numbers: tuple[str, ...] = scope[1] if scope else ()
        entry_id = scope[0] if scope else None
        names = dict(session.execute(select(Staff.id, Staff.name)).all())

        audit = session.scalars(
            select(AuditRecord)
            .where(or_(AuditRecord.customer_ref == customer_ref,
                       *([AuditRecord.entry_id == entry_id] if entry_id else [])))
            .order_by(AuditRecord.at, AuditRecord.id)
        ).all()
        call_match = []
        if entry_id is not None:
            call_match.append(Call.entry_id == entry_id)
        if numbers:
            call_match.append(Call.from_number.in_(numbers))
        calls = session.scalars(
            select(Call).where(or_(*call_match)).order_by(Call.started_at, Call.id)
        ).all() if call_match else []
        sids = [c.call_sid for c in calls]
        events: dict[str, list[dict[str, Any]]] = {sid: [] for sid in sids}
        for start in range(0, len(sids), 500):
            for event in session.scalars(
                select(CallEvent).where(CallEvent.call_sid.in_(sids[start:start + 500]))
                .order_by(CallEvent.at, CallEvent.id)
            ):
                events[event.call_sid].append(
                    {"kind": event.kind, "at": _plain(event.at), "detail": event.detail})
        notices = session.scalars(
            select(Notice).where(or_(Notice.customer_ref == customer_ref,
                                     *([Notice.entry_id == entry_id] if entry_id else [])))
            .order_by(Notice.produced_at, Notice.id)
        ).all()
        proposal_match = [Proposal.customer_ref == customer_ref]
        if entry_id is not None:
            proposal_match.append(Proposal.entry_id == entry_id)
        if numbers:
            proposal_match.append(Proposal.phone_number.in_(numbers))
        if sids:
            proposal_match.append(Proposal.call_sid.in_(sids))
        proposals = session.scalars(
            select(Proposal).where(or_(*proposal_match)).order_by(Proposal.proposed_at)
        ).all()
        incidents = session.scalars(
            select(Incident).where(Incident.call_sid.in_(sids)).order_by(Incident.reported_at)
        ).all() if sids else []

        # Call events the call log refused and set aside (store/dead_letters.py) hold the same
        # data as the call log, so they are part of what is held about the person too.
        letter_match = [DeadLetter.fields.contains(number) for number in numbers]
        if sids:
            letter_match.append(DeadLetter.call_sid.in_(sids))
        dead_letters = session.scalars(
            select(DeadLetter).where(or_(*letter_match)).order_by(DeadLetter.failed_at)
        ).all() if letter_match else []

        # Issue 14: recordings of their calls are held about them too.
        recordings = call_recordings.of_calls(session, sids)

        reviews = session.scalars(
            select(Review).where(Review.entry_id == entry_id).order_by(Review.reviewed_at)
        ).all() if entry_id else []
        appeals = session.scalars(
            select(Appeal).where(Appeal.entry_id == entry_id).order_by(Appeal.received_on)
        ).all() if entry_id else []
        # Issue 13: voicemails and messages they left, and what staff made of them.
        triaged = triage_items_for(session, customer_ref, entry_id)
        # Issue 13: what their restriction rests on, and what callflow links to them.
        links = evidence_links(session, customer_ref)

        if not (entry or audit or calls or notices or proposals or dead_letters):
            return None
        entries = []
        if entry is not None:
            fields = fields_of(entry)
            entries.append({
                **_row(entry, skip=("designated_contact_id", "fallback_contact_id",
                                    "decided_by_id", "lifted_by_id")),
                "phone_numbers": list(fields.phone_numbers),
                "designated_contact": fields.designated_contact,
                "fallback": fields.fallback,
                "decided_by": fields.decided_by,
                "lifted_by": entry.lifted_by.email if entry.lifted_by else None,
                "needs": [a.label for a in fields.adjustments],
            })
        return {
            "customer_ref": customer_ref,
            "numbers": list(numbers),
            "entries": entries,
            "audit": [_row(a) for a in audit],
            "calls": [{**_row(c), "agent": names.get(c.agent_id), "events": events[c.call_sid]}
                      for c in calls],
            "notices": [_row(n) for n in notices],
            "proposals": [_row(p) for p in proposals],
            "incidents": [_row(i) for i in incidents],
            "call_events_set_aside": [_row(d) for d in dead_letters],
            "call_recordings": [_row(r) for r in recordings],
            "reviews": [{**_row(r, skip=("reviewed_by_id",)),
                         "reviewed_by": names.get(r.reviewed_by_id)} for r in reviews],
            "appeals": [{**_row(a, skip=("recorded_by_id", "decided_by_id")),
                         "recorded_by": names.get(a.recorded_by_id),
                         "decided_by": names.get(a.decided_by_id)} for a in appeals],
            "letters": letters_summary(notices),
            "evidence": evidence_summary(entries[0]["evidence"] if entries else [], links),
            "voicemails_and_messages": [{**_row(t, skip=("handled_by_id",)),
                                         "handled_by": names.get(t.handled_by_id)}
                                        for t in triaged],
        }

