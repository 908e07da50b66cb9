"""The triage queue: what people on the register leave is read, judged and answered on time
(policy 4.7; see callflow/triage.py for the rules)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callflow import words
from callflow.register import EntryInvalid, FieldError
from callflow.roles import Capability, may
from callflow.triage import TriageDecision, TriageOutcome, TriageSource, due_on, is_overdue
from config.clock import local_today
from store.db import transaction
from store.models import AuditRecord, Staff, TriageItem
from store.register import RegisterStore
from store.triage import handled_items, open_items, queue_voicemails, unqueued_voicemails

TRIAGED = "triaged"


@dataclass(frozen=True)
class QueueItem:
    """One item on the triage queue as staff read it."""

    id: int
    customer_ref: str
    source: TriageSource
    received_at: datetime
    due_on: date
    overdue: bool
    has_recording: bool
    call_sid: str | None = None
    summary: str = ""
    outcome: TriageOutcome | None = None
    notes: str = ""
    handled_by: str = ""
    handled_at: datetime | None = None


def _item(item: TriageItem, tz: tzinfo, due_days: int, today: date) -> QueueItem:
    due = due_on(local_today(tz, item.received_at), due_days)
    return QueueItem(
        id=item.id, customer_ref=item.customer_ref, source=TriageSource(item.source),
        received_at=item.received_at, due_on=due,
        overdue=is_overdue(due, today, item.handled_at is not None),
        has_recording=bool(item.recording_url), call_sid=item.call_sid, summary=item.summary,
        outcome=TriageOutcome(item.outcome) if item.outcome else None, notes=item.notes,
        handled_by=item.handled_by.name if item.handled_by else "", handled_at=item.handled_at,
    )


def waiting(sessions: sessionmaker[Session], tz: tzinfo, due_days: int,
            today: date) -> list[QueueItem]:
    """Items not yet handled, oldest first, each with its due date and whether it is overdue."""
    with sessions() as session:
        return [_item(i, tz, due_days, today) for i in open_items(session)]


def recently_handled(sessions: sessionmaker[Session], tz: tzinfo, due_days: int,
                     today: date) -> list[QueueItem]:
    """The latest handled items, newest first."""
    with sessions() as session:
        return [_item(i, tz, due_days, today) for i in handled_items(session)]


def overdue_count(sessions: sessionmaker[Session], tz: tzinfo, due_days: int,
                  today: date) -> int:
    """How many items are past their due date without an outcome (for the dashboard)."""
    return sum(item.overdue for item in waiting(sessions, tz, due_days, today))


def catch_up(sessions: sessionmaker[Session]) -> int:
    """Queue voicemails the call log missed (their event landed before the call's lookup);
    safe to repeat. Returns how many were queued."""
    with transaction(sessions) as session:
        return queue_voicemails(session, unqueued_voicemails(session))


def add_message(sessions: sessionmaker[Session], customer_ref: str, summary: str,
                received_at: datetime, actor_email: str, now: datetime,
                problems: Iterable[FieldError] = ()) -> int:
    """Put a message that came another way (a letter, an email) on the queue; its id.

    problems: what the caller already found wrong (a date it could not read), reported with
    these checks' own, all at once, by EntryInvalid."""
    errors = list(problems)
    if not summary.strip():
        errors.append(FieldError("summary", "say briefly what the message is about"))
    with transaction(sessions) as session:
        actor = _triager(session, actor_email)
        entry = RegisterStore(session).get(customer_ref.strip())
        if not customer_ref.strip():
            errors.insert(0, FieldError("customer_ref", "is required"))
        elif entry is None or entry.anonymised_at is not None:
            errors.insert(0, FieldError("customer_ref",
                                        f"{customer_ref.strip()} is not on the register"))
        if errors:
            raise EntryInvalid(errors)
        item = TriageItem(entry_id=entry.id, customer_ref=entry.customer_ref,
                          source=TriageSource.MESSAGE.value, received_at=received_at,
                          summary=summary.strip(), notes="")
        session.add(item)
        session.flush()
        session.add(AuditRecord(entry_id=entry.id, customer_ref=entry.customer_ref,
                                actor=actor.email, action="message_logged", at=now,
                                changes={"triage_message": ["", summary.strip()]}))
        return item.id


def _triager(session: Session, email: str) -> Staff:
    actor = session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    if actor is None or not actor.active:
        raise PermissionError(f"{email} is not a staff member")
    if not may(actor.role, Capability.TRIAGE_MESSAGES):
        raise PermissionError(f"{email} is {words.role(actor.role)}; supervisors and managers "
                              "triage messages")
    return actor


def record_outcome(sessions: sessionmaker[Session], item_id: int, decision: TriageDecision,
                   actor_email: str, now: datetime) -> None:
    """Record what an item was and who handled it, with an audit record of before and after.

    Recording again replaces the outcome (a correction), audited the same way. Raises
    LookupError (no such item) or PermissionError (not allowed to triage).
    """
    with transaction(sessions) as session:
        actor = _triager(session, actor_email)
        item = session.get(TriageItem, item_id)
        if item is None:
            raise LookupError(f"no triage item {item_id}")
        before = _audited(item)
        item.outcome = decision.outcome.value
        item.notes = decision.notes
        item.handled_by_id = actor.id
        item.handled_at = now
        session.flush()
        after = _audited(item, actor.name)
        session.add(AuditRecord(
            entry_id=item.entry_id, customer_ref=item.customer_ref, actor=actor.email,
            action=TRIAGED, at=now,
            changes={name: [before[name], after[name]] for name in after
                     if before[name] != after[name]},
        ))


def _audited(item: TriageItem, handler: str | None = None) -> dict[str, str]:
    outcome = TriageOutcome(item.outcome).label if item.outcome else ""
    by = handler if handler is not None else (item.handled_by.name if item.handled_by else "")
    return {"triage_outcome": outcome, "triage_notes": item.notes or "", "triage_handled_by": by}
