"""Register upkeep: lapses recorded, reviews listed and recorded, retention applied.

Each takes the time it works at; the daily jobs in workers/upkeep.py read the clock and call these.
Each is safe to run twice, or at the same time as itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.db import transaction
from store.models import (
    AuditRecord,
    Call,
    CallEvent,
    DeadLetter,
    EntryPhone,
    Notice,
    Proposal,
    RegisterEntry,
    RepresentativePhone,
    TriageItem,
)
from store.notices import withdraw_unsent
from store.register import SYSTEM_ACTOR, RegisterStore
from usecases.appeals import late_appeals
from usecases.register import RegisterService
from usecases.reviews import lapse_unreviewed, overdue_reviews

REVIEW_NOTICE_DAYS = 14
RETENTION_BATCH = 2000
ANONYMISED = "(anonymised)"


@dataclass(frozen=True)
class EntryDue:
    """An entry a manager needs to look at, and the date that makes it so."""

    customer_ref: str
    name: str
    due_on: date | None
    ends_on: date


def record_lapses(register: RegisterService, now: datetime, today: date,
                  unreviewed_after_days: int = 0) -> list[str]:
    """Audit each entry that has passed its end date, once; returns their references.

    With unreviewed_after_days (CALLFLOW_LAPSE_UNREVIEWED_AFTER_DAYS; 0 is off), a restriction
    left unreviewed that many days after its review date lapses first (usecases/reviews.py).
    """
    recorded: list[str] = lapse_unreviewed(register, unreviewed_after_days, now, today)
    with transaction(register.sessions) as session:
        store = RegisterStore(session)
        due = session.scalars(
            select(RegisterEntry).where(
                RegisterEntry.ends_on < today, RegisterEntry.lifted_at.is_(None),
                RegisterEntry.lapse_recorded_at.is_(None), RegisterEntry.anonymised_at.is_(None),
            ).order_by(RegisterEntry.id)
        ).all()
        for entry in due:
            # Conditional, so a second run at the same moment records nothing twice.
            claimed = session.execute(
                update(RegisterEntry)
                .where(RegisterEntry.id == entry.id, RegisterEntry.lapse_recorded_at.is_(None))
                .values(lapse_recorded_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if claimed:
                store.audit(entry, SYSTEM_ACTOR, "lapsed", now,
                            {"lapsed": ["", entry.ends_on.isoformat()]})
                withdraw_unsent(session, entry, SYSTEM_ACTOR, now)
                recorded.append(entry.customer_ref)
    # The call path already ignores lapsed entries; the sync drops their numbers from the cache.
    register.sync_cache(today)
    return recorded


def reviews_due(session: Session, today: date, within_days: int = REVIEW_NOTICE_DAYS
                ) -> list[EntryDue]:
    """Entries still in force whose review falls within the next `within_days` (or is overdue)."""
    rows = session.execute(
        select(RegisterEntry.customer_ref, RegisterEntry.name, RegisterEntry.review_on,
               RegisterEntry.ends_on)
        .where(RegisterEntry.lifted_at.is_(None), RegisterEntry.ends_on >= today,
               RegisterEntry.review_on.is_not(None),
               RegisterEntry.review_on <= today + timedelta(days=within_days))
        .order_by(RegisterEntry.review_on, RegisterEntry.customer_ref)
    )
    return [EntryDue(ref, name or "", review, ends) for ref, name, review, ends in rows]


def without_notice(session: Session, today: date) -> list[EntryDue]:
    """Entries in force or to come whose customer has not been sent a notice (policy 5.1)."""
    rows = session.execute(
        select(RegisterEntry.customer_ref, RegisterEntry.name, RegisterEntry.starts_on,
               RegisterEntry.ends_on)
        .where(RegisterEntry.lifted_at.is_(None), RegisterEntry.ends_on >= today,
               RegisterEntry.notice_sent_on.is_(None))
        .order_by(RegisterEntry.starts_on, RegisterEntry.customer_ref)
    )
    return [EntryDue(ref, name or "", starts, ends) for ref, name, starts, ends in rows]


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run removed."""

    calls: int = 0
    events: int = 0
    entries: int = 0
    notices: int = 0
    dead_letters: int = 0


def apply_retention(sessions: sessionmaker[Session], now: datetime, today: date,
                    retention_days: int) -> RetentionReport:
    """Delete calls and their events, and anonymise lapsed entries, older than the period."""
    cutoff = now - timedelta(days=retention_days)
    cutoff_day = today - timedelta(days=retention_days)
    calls = events = 0
    while True:
        # Short batches by the started_at index: no long lock, and a crash loses nothing.
        with transaction(sessions) as session:
            batch = session.execute(
                select(Call.id, Call.call_sid).where(Call.started_at < cutoff)
                .order_by(Call.started_at, Call.id).limit(RETENTION_BATCH)
            ).all()
            if not batch:
                break
            sids = [sid for _, sid in batch]
            events += session.execute(
                delete(CallEvent).where(CallEvent.call_sid.in_(sids))
                .execution_options(synchronize_session=False)
            ).rowcount
            calls += session.execute(
                delete(Call).where(Call.id.in_([i for i, _ in batch]))
                .execution_options(synchronize_session=False)
            ).rowcount
    entries = notices = 0
    with transaction(sessions) as session:
        stale = session.scalars(
            select(RegisterEntry).where(
                RegisterEntry.anonymised_at.is_(None),
                or_(RegisterEntry.lifted_at < cutoff,
                    (RegisterEntry.lifted_at.is_(None)) & (RegisterEntry.ends_on < cutoff_day)),
            )
        ).all()
        for entry in stale:
            notices += _anonymise(session, entry, now)
            entries += 1
        notices += session.execute(
            delete(Notice).where(Notice.entry_id.is_(None), Notice.produced_at < cutoff)
            .execution_options(synchronize_session=False)
        ).rowcount
        # Set-aside call events hold what the call log holds, so they go when it would.
        dead_letters = session.execute(
            delete(DeadLetter).where(DeadLetter.failed_at < cutoff)
            .execution_options(synchronize_session=False)
        ).rowcount
    return RetentionReport(calls, events, entries, notices, dead_letters)


def _anonymise(session: Session, entry: RegisterEntry, now: datetime) -> int:
    """Strip an entry of everything that identifies its customer; returns notices deleted."""
    old_ref, new_ref = entry.customer_ref, f"anonymised-{entry.id}"
    removed = session.execute(
        delete(Notice).where(or_(Notice.entry_id == entry.id, Notice.customer_ref == old_ref))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(delete(EntryPhone).where(EntryPhone.entry_id == entry.id)
                    .execution_options(synchronize_session=False))
    # Issue 13: representatives' numbers and what the person left identify them too.
    session.execute(delete(RepresentativePhone).where(RepresentativePhone.entry_id == entry.id)
                    .execution_options(synchronize_session=False))
    session.execute(delete(TriageItem).where(or_(TriageItem.entry_id == entry.id,
                                                 TriageItem.customer_ref == old_ref))
                    .execution_options(synchronize_session=False))
    session.execute(
        update(Proposal).where(or_(Proposal.entry_id == entry.id, Proposal.customer_ref == old_ref))
        .values(customer_ref=new_ref, phone_number=None, reason=ANONYMISED, decision_note="")
        .execution_options(synchronize_session=False)
    )
    # Retention overrides the audit trail's append-only rule: which fields changed, and when,
    # survive; the values, which identify the customer, do not.
    for record in session.scalars(
        select(AuditRecord).where(or_(AuditRecord.entry_id == entry.id,
                                      AuditRecord.customer_ref == old_ref))
    ):
        record.customer_ref = new_ref
        record.changes = {name: [ANONYMISED if v else "" for v in values]
                          for name, values in (record.changes or {}).items()}
    session.expire(entry, ["phones", "representative_phones"])
    entry.adjustments, entry.representatives, entry.written_only_exception = [], [], ""
    entry.customer_ref, entry.name, entry.reason = new_ref, None, ANONYMISED
    entry.staff_notes, entry.closed_issues, entry.lifted_reason = "", [], (
        ANONYMISED if entry.lifted_reason else None)
    entry.anonymised_at = entry.updated_at = now
    session.flush()
    RegisterStore(session).audit(entry, SYSTEM_ACTOR, "anonymised", now, {})
    return removed


def digest(session: Session, today: date) -> dict[str, object]:
    """The managers' daily list: reviews due within 14 days (and those overdue), entries
    without a notice, and appeals not decided in time."""
    return {
        "reviews_overdue": [{"customer_ref": r.customer_ref, "review_on": r.review_on.isoformat(),
                             "days_overdue": r.days_overdue}
                            for r in overdue_reviews(session, today)],
        "appeals_late": [{"customer_ref": a.customer_ref, "received_on": a.received_on.isoformat(),
                          "decide_by": a.decide_by.isoformat(), "days_late": a.days_late}
                         for a in late_appeals(session, today)],
        "date": today.isoformat(),
        "reviews_due": [{"customer_ref": e.customer_ref, "review_on": e.due_on.isoformat()}
                        for e in reviews_due(session, today)],
        "without_notice": [{"customer_ref": e.customer_ref, "starts_on": e.due_on.isoformat()}
                           for e in without_notice(session, today)],
    }
