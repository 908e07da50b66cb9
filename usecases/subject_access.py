"""Everything callflow holds about one person, for a subject access request."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import Session, sessionmaker

from store.call_queries import person_scope
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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(obj: object, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of a model instance, as JSON-ready values."""
    mapper = inspect(obj).mapper
    return {c.key: _plain(getattr(obj, c.key)) for c in mapper.column_attrs if c.key not in skip}


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

        reviews = session.scalars(
            select(Review).where(Review.entry_id == entry_id).order_by(Review.reviewed_at)
        ).all() if entry_id else []
        appeals = session.scalars(
            select(Appeal).where(Appeal.entry_id == entry_id).order_by(Appeal.received_on)
        ).all() if entry_id else []

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
            "reviews": [{**_row(r, skip=("reviewed_by_id",)),
                         "reviewed_by": names.get(r.reviewed_by_id)} for r in reviews],
            "appeals": [{**_row(a, skip=("recorded_by_id", "decided_by_id")),
                         "recorded_by": names.get(a.recorded_by_id),
                         "decided_by": names.get(a.decided_by_id)} for a in appeals],
        }

