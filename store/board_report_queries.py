"""The facts the board's report counts, read from the database as plain values (no names,
numbers or reasons leave this module)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callflow.board_report import (
    AppealFacts,
    Arrangement,
    CallFacts,
    ChangeFacts,
    EntryFacts,
    ReportPeriod,
    ReviewFacts,
)
from callflow.events import EventKind
from store.call_queries import local_bounds
from store.models import Appeal, AuditRecord, Call, CallEvent, RegisterEntry, Review

_END_KINDS = (EventKind.ENDED_BY_AGENT.value, EventKind.WRAP_UP.value,
              EventKind.TIME_WARNING.value)


def _arrangements(entry: RegisterEntry) -> tuple[Arrangement, ...]:
    found = [
        (entry.written_only, Arrangement.WRITTEN_ONLY),
        (bool(entry.call_windows), Arrangement.CALL_WINDOWS),
        (entry.designated_contact_id is not None, Arrangement.DESIGNATED_CONTACT),
        (entry.visits_by_appointment, Arrangement.VISITS_BY_APPOINTMENT),
        (entry.max_calls is not None or entry.max_call_minutes is not None,
         Arrangement.CALL_LIMITS),
    ]
    return tuple(arrangement for present, arrangement in found if present)


def entries(session: Session, tz: tzinfo) -> list[EntryFacts]:
    """Every register entry, as the report counts it."""
    return [
        EntryFacts(entry.id, tuple(entry.categories or ()), _arrangements(entry),
                   entry.starts_on, entry.ends_on,
                   entry.lifted_at.astimezone(tz).date() if entry.lifted_at else None,
                   entry.review_on)
        for entry in session.scalars(select(RegisterEntry).order_by(RegisterEntry.id))
    ]


def changes(session: Session, period: ReportPeriod, tz: tzinfo) -> list[ChangeFacts]:
    """The register's audit records in the period, by local day."""
    start, end = local_bounds(period.first, period.last, tz)
    rows = session.execute(
        select(AuditRecord.entry_id, AuditRecord.action, AuditRecord.at, AuditRecord.changes)
        .where(AuditRecord.at >= start, AuditRecord.at < end).order_by(AuditRecord.id))
    return [ChangeFacts(entry_id, action, at.astimezone(tz).date(), tuple(changed or {}))
            for entry_id, action, at, changed in rows]


def reviews(session: Session, period: ReportPeriod) -> list[ReviewFacts]:
    """The reviews done in the period, with the date each was due by."""
    rows = session.execute(
        select(Review.reviewed_on, Review.previous_review_on, Review.outcome)
        .where(Review.reviewed_on >= period.first, Review.reviewed_on <= period.last))
    return [ReviewFacts(done, due, outcome) for done, due, outcome in rows]


def appeals(session: Session, period: ReportPeriod, tz: tzinfo) -> list[AppealFacts]:
    """Every appeal received by the end of the period."""
    rows = session.execute(
        select(Appeal.received_on, Appeal.decide_by, Appeal.decided_at, Appeal.outcome)
        .where(Appeal.received_on <= period.last))
    return [AppealFacts(received, decide_by,
                        decided_at.astimezone(tz).date() if decided_at else None, outcome)
            for received, decide_by, decided_at, outcome in rows]


def calls(session: Session, period: ReportPeriod, tz: tzinfo) -> list[CallFacts]:
    """The calls that started in the period, each with how it was warned and ended."""
    start, end = local_bounds(period.first, period.last, tz)
    in_period = (Call.started_at >= start, Call.started_at < end)
    ended: dict[str, str] = {}
    timed: set[str] = set()
    for sid, kind, detail in _end_events(session, in_period):
        if kind == EventKind.TIME_WARNING:
            timed.add(sid)
        elif kind == EventKind.WRAP_UP or not ended.get(sid):
            # A reason given afterwards (wrap-up) is the reason the call was ended for.
            ended[sid] = str((detail or {}).get("reason") or "")
    rows = session.execute(
        select(Call.call_sid, Call.entry_id, Call.decision, Call.warned, Call.ended_by_agent)
        .where(*in_period).order_by(Call.id))
    return [CallFacts(entry_id, decision or "", bool(warned), sid in timed,
                      ended.get(sid, "") if ended_by_agent else None)
            for sid, entry_id, decision, warned, ended_by_agent in rows]


def _end_events(session: Session, in_period) -> Iterator[tuple[str, str, dict]]:
    yield from session.execute(
        select(CallEvent.call_sid, CallEvent.kind, CallEvent.detail)
        .join(Call, Call.call_sid == CallEvent.call_sid)
        .where(*in_period, CallEvent.kind.in_(_END_KINDS))
        .order_by(CallEvent.id))
