"""The call log tables: each event lands once by its key, and the call's summary row follows it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, and_, case, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callflow.call_state import FINAL_STATUSES
from callflow.events import EventKind
from store.call_events import Batch
from store.models import Call, CallEvent, UTCDateTime
from store.triage import queue_voicemails

# Twilio's call lifecycle, for callbacks without a SequenceNumber; every final status ranks last.
STATUS_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
FINAL_RANK = 4

# Control characters (NUL breaks PostgreSQL text) and lone surrogates (cannot be encoded).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_KEEPING_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
DETAIL_TEXT_MAX = 2048
DETAIL_DEPTH_MAX = 8
INT32 = (-(2**31), 2**31 - 1)


def clean_text(value: object, size: int | None = None, *, keep_lines: bool = False) -> str:
    """Text without control characters, at most size characters."""
    text = value if isinstance(value, str) else str(value)
    text = (_CONTROL_KEEPING_LINES if keep_lines else _CONTROL).sub("", text)
    return text[:size] if size is not None else text


def clean_int(value: object, bounds: tuple[int, int] = INT32) -> int | None:
    """An integer within the column type's range, else None (an absurd value is no value)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if bounds[0] <= value <= bounds[1] else None


def clean_detail(value: object, depth: int = 0) -> object:
    """An event's detail as the database can store it as JSON: text cleaned and bounded."""
    if isinstance(value, str):
        return clean_text(value, DETAIL_TEXT_MAX, keep_lines=True)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= DETAIL_DEPTH_MAX:
        return None
    if isinstance(value, dict):
        return {clean_text(k, 100): clean_detail(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_detail(v, depth + 1) for v in value]
    return clean_text(value, DETAIL_TEXT_MAX)


def clean_call_values(changes: dict[str, object]) -> dict[str, object]:
    """Summary-row values bounded to their columns: text cleaned and cut to the column's size,
    integers outside the column's range dropped."""
    columns = Call.__table__.c
    cleaned: dict[str, object] = {}
    for name, value in changes.items():
        kind = columns[name].type
        if value is None:
            cleaned[name] = None
        elif isinstance(kind, Boolean):
            cleaned[name] = bool(value)
        elif isinstance(kind, String):
            cleaned[name] = clean_text(value, kind.length) or None
        elif isinstance(kind, Integer):
            cleaned[name] = clean_int(value)
        else:
            cleaned[name] = value
    return cleaned


def _insert(session: Session, model):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _received(detail: dict) -> dict[str, object]:
    return {"from_number": detail.get("from"), "to_number": detail.get("to") or None,
            "withheld": bool(detail.get("withheld"))}


def _looked_up(detail: dict) -> dict[str, object]:
    return {"entry_id": detail.get("entry_id"), "lookup_failed": bool(detail.get("failed"))}


def _voicemail(detail: dict) -> dict[str, object]:
    return {"voicemail": True, "recording_url": detail.get("recording_url") or None}


# What each kind of event sets on the call's summary row; kinds not here set nothing.
_SUMMARY: dict[str, Callable[[dict], dict[str, object]]] = {
    EventKind.RECEIVED: _received,
    EventKind.LOOKUP: _looked_up,
    EventKind.EMERGENCY: lambda _detail: {"emergency": True},
    EventKind.CONNECTED: lambda detail: {"agent_id": detail.get("staff_id")},
    EventKind.VOICEMAIL: _voicemail,
    EventKind.WARNING: lambda _detail: {"warned": True},
    EventKind.ENDED_BY_AGENT: lambda _detail: {"ended_by_agent": True},
    EventKind.INCIDENT: lambda _detail: {"incident": True},
}


def summary_changes(kind: str, key: str, at: datetime, detail: dict) -> dict[str, object]:
    """What one event says about the call's summary row (each event sets its own columns);
    status is folded by its order instead (see StatusReport)."""
    if kind == EventKind.DECISION:
        # A key press later in the call is recorded as a decision too, under menu:<digits>.
        return {"decision": detail.get("outcome")} if key == "decision" else {}
    changes = _SUMMARY.get(kind)
    return changes(detail) if changes is not None else {}


def _rank(status: str | None) -> int:
    return FINAL_RANK if status in FINAL_STATUSES else STATUS_RANK.get(status or "", 0)


@dataclass(frozen=True)
class StatusReport:
    """One status callback: Twilio does not promise their order, so each says how it ranks."""

    status: str
    sequence: int | None
    at: datetime
    duration: int | None

    @classmethod
    def of(cls, at: datetime, detail: dict) -> StatusReport | None:
        """The report a status event carries, cleaned; None when it names no status."""
        status = clean_text(detail.get("status") or "", Call.__table__.c.status.type.length)
        if not status:
            return None
        return cls(status, clean_int(detail.get("sequence")), at,
                   clean_int(detail.get("duration")))

    @property
    def final(self) -> bool:
        """True for a status a call never leaves."""
        return self.status in FINAL_STATUSES

    def supersedes(self, other: StatusReport) -> bool:
        """A final status beats a non-final one; then the higher sequence, when both have one;
        else the later stage of the call (between two final ones, the first to arrive stays)."""
        if self.final != other.final:
            return self.final
        if self.sequence is not None and other.sequence is not None:
            return self.sequence > other.sequence
        return _rank(self.status) > _rank(other.status)

    def changes(self) -> dict[str, object]:
        """The summary row's status columns, changed only where this report supersedes the
        row's own, as one UPDATE's SET clause (each CASE sees the row as it was)."""
        known = Call.status_sequence.is_not(None)
        old_rank = case({s: FINAL_RANK for s in FINAL_STATUSES} | STATUS_RANK,
                        value=Call.status, else_=0)
        by_order = old_rank < _rank(self.status)
        if self.sequence is not None:
            by_order = or_(and_(known, Call.status_sequence < self.sequence),
                           and_(~known, by_order))
        old_final = Call.status.in_(FINAL_STATUSES)
        wins = or_(Call.status.is_(None),
                   or_(~old_final, by_order) if self.final else and_(~old_final, by_order))
        changes: dict[str, object] = {
            "status": case((wins, literal(self.status, String())), else_=Call.status),
            "status_sequence": case((wins, literal(self.sequence, Integer())),
                                    else_=Call.status_sequence),
        }
        if self.final:
            changes["ended_at"] = case((wins, literal(self.at, UTCDateTime())),
                                       else_=Call.ended_at)
            changes["duration_seconds"] = case((wins, literal(self.duration, Integer())),
                                               else_=Call.duration_seconds)
        return changes


class CallLog:
    """Writes batches of call events into the call log, inside the caller's transaction."""

    def __init__(self, session: Session):
        self.session = session

    def record(self, batches: Iterable[Batch]) -> int:
        """Insert each new event and fold it into its call; returns how many were new."""
        new = 0
        for batch in batches:
            if not batch.events:
                continue
            # A call starts at its earliest event: "received" when it lands, else whatever came
            # first, so that a call whose first webhook was lost still appears in the log.
            earliest = min(e.at for e in batch.events)
            created = self.session.scalar(
                _insert(self.session, Call).values(call_sid=batch.call_sid, started_at=earliest)
                .on_conflict_do_nothing(index_elements=["call_sid"])
                .returning(Call.call_sid)
            )
            # A key is cleaned the same way every time it arrives, so it still lands once.
            keys = [clean_text(f"{batch.call_sid}:{e.key}") for e in batch.events]
            rows = [{"event_key": key, "call_sid": batch.call_sid, "kind": e.kind, "at": e.at,
                     "detail": clean_detail(e.detail)}
                    for key, e in zip(keys, batch.events, strict=True)]
            inserted = set(self.session.scalars(
                _insert(self.session, CallEvent).values(rows)
                .on_conflict_do_nothing(index_elements=["event_key"])
                .returning(CallEvent.event_key)
            ))
            changes: dict[str, object] = {}
            report: StatusReport | None = None
            for key, event in zip(keys, batch.events, strict=True):
                if key not in inserted:
                    continue
                if event.kind == EventKind.STATUS:
                    found = StatusReport.of(event.at, event.detail)
                    if found and (report is None or found.supersedes(report)):
                        report = found
                else:
                    changes.update(summary_changes(event.kind, event.key, event.at,
                                                   event.detail))
            changes = clean_call_values(changes)
            if report is not None:
                changes.update(report.changes())
            new += len(inserted)
            if not created and inserted:
                at = literal(earliest, UTCDateTime())
                changes["started_at"] = case(
                    (or_(Call.started_at.is_(None), Call.started_at > at), at),
                    else_=Call.started_at)
            if changes:
                self.session.execute(
                    update(Call).where(Call.call_sid == batch.call_sid).values(**changes)
                )
            # A voicemail from a person on the register goes on the triage queue (4.7).
            queue_voicemails(self.session, [
                (batch.call_sid, e.at, changes.get("recording_url"))
                for key, e in zip(keys, batch.events, strict=True)
                if key in inserted and e.kind == EventKind.VOICEMAIL])
        return new
