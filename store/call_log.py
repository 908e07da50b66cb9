"""The call log tables: each event lands once by its key, and the call's summary row follows it."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, and_, bindparam, case, or_, update
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


def _status_set(final: bool, sequenced: bool) -> dict[str, object]:
    """The summary row's status columns, changed only where a StatusReport supersedes the row's
    own, as an UPDATE's SET clause (each CASE sees the row as it was). The report comes as bound
    parameters (s_status, s_sequence, s_rank, s_at, s_duration), so that one compiled UPDATE
    serves, in one executemany, every call whose report has the same shape."""
    known = Call.status_sequence.is_not(None)
    old_rank = case({s: FINAL_RANK for s in FINAL_STATUSES} | STATUS_RANK,
                    value=Call.status, else_=0)
    by_order = old_rank < bindparam("s_rank", type_=Integer())
    if sequenced:
        by_order = or_(and_(known, Call.status_sequence < bindparam("s_sequence",
                                                                    type_=Integer())),
                       and_(~known, by_order))
    # Not IN (...): its list is expanded per execution, which an executemany cannot do.
    old_final = or_(*(Call.status == name for name in sorted(FINAL_STATUSES)))
    wins = or_(Call.status.is_(None),
               or_(~old_final, by_order) if final else and_(~old_final, by_order))
    changes: dict[str, object] = {
        "status": case((wins, bindparam("s_status", type_=String())), else_=Call.status),
        "status_sequence": case((wins, bindparam("s_sequence", type_=Integer())),
                                else_=Call.status_sequence),
    }
    if final:
        changes["ended_at"] = case((wins, bindparam("s_at", type_=UTCDateTime())),
                                   else_=Call.ended_at)
        changes["duration_seconds"] = case((wins, bindparam("s_duration", type_=Integer())),
                                           else_=Call.duration_seconds)
    return changes


@functools.lru_cache(maxsize=256)
def _summary_update(columns: tuple[str, ...], status: tuple[bool, bool] | None, starts: bool):
    """The UPDATE of calls' summary rows for one shape of change: plain columns (v_<name>), the
    status columns folded by order, and started_at moved earlier (s_started); by s_sid."""
    table = Call.__table__
    values: dict[str, object] = {
        name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns}
    if status is not None:
        values.update(_status_set(*status))
    if starts:
        at = bindparam("s_started", type_=UTCDateTime())
        values["started_at"] = case((or_(Call.started_at.is_(None), Call.started_at > at), at),
                                    else_=Call.started_at)
    return update(table).where(table.c.call_sid == bindparam("s_sid")).values(**values)


@functools.lru_cache(maxsize=4)
def _insert_calls(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(Call.__table__).on_conflict_do_nothing(index_elements=["call_sid"])
            .returning(Call.__table__.c.call_sid))


@functools.lru_cache(maxsize=4)
def _insert_events(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(CallEvent.__table__).on_conflict_do_nothing(index_elements=["event_key"])
            .returning(CallEvent.__table__.c.event_key))


class _Summary:
    """What a round's new events say about one call's summary row, folded in arrival order."""

    def __init__(self) -> None:
        self.changes: dict[str, object] = {}
        self.report: StatusReport | None = None
        self.started: datetime | None = None

    def add(self, events: list, earliest: datetime, starts: bool) -> dict[str, object]:
        """Fold one batch's new events in; returns that batch's own cleaned changes."""
        changes: dict[str, object] = {}
        for event in events:
            if event.kind == EventKind.STATUS:
                found = StatusReport.of(event.at, event.detail)
                if found and (self.report is None or found.supersedes(self.report)):
                    self.report = found
            else:
                changes.update(summary_changes(event.kind, event.key, event.at, event.detail))
        changes = clean_call_values(changes)
        self.changes.update(changes)
        if starts and (self.started is None or earliest < self.started):
            self.started = earliest
        return changes

    def update(self, call_sid: str) -> tuple[tuple | None, dict[str, object]]:
        """The shape of this call's UPDATE (None: nothing to change) and its parameters."""
        columns = tuple(sorted(self.changes))
        report = self.report
        status = (report.final, report.sequence is not None) if report is not None else None
        if not columns and status is None and self.started is None:
            return None, {}
        params: dict[str, object] = {"s_sid": call_sid}
        params.update({f"v_{name}": value for name, value in self.changes.items()})
        if report is not None:
            params.update(s_status=report.status, s_sequence=report.sequence,
                          s_rank=_rank(report.status), s_at=report.at,
                          s_duration=report.duration)
        if self.started is not None:
            params["s_started"] = self.started
        return (columns, status, self.started is not None), params


class CallLog:
    """Writes batches of call events into the call log, inside the caller's transaction.

    A round of batches costs a few statements whatever its size: one multi-row insert of the
    calls it names and one of its events (each compiled once, skipping what is already there),
    the summary rows' updates as one executemany for each shape of change, then the voicemails.
    """

    def __init__(self, session: Session):
        self.session = session

    def record(self, batches: Iterable[Batch]) -> int:
        """Insert each new event and fold it into its call; returns how many were new."""
        batches = [batch for batch in batches if batch.events]
        if not batches:
            return 0
        connection = self.session.connection()
        dialect = connection.dialect.name
        # A call starts at its earliest event: "received" when it lands, else whatever came
        # first, so that a call whose first webhook was lost still appears in the log. The
        # call's first batch in the round creates it, as if the batches were recorded in turn.
        earliest = [min(e.at for e in batch.events) for batch in batches]
        first: dict[str, int] = {}
        for n, batch in enumerate(batches):
            first.setdefault(batch.call_sid, n)
        created = set(connection.execute(_insert_calls(dialect), [
            {"call_sid": sid, "started_at": earliest[n]} for sid, n in first.items()
        ]).scalars())
        # A key is cleaned the same way every time it arrives, so it still lands once; a key
        # twice in one round is new (if at all) where it first appears.
        keys = [[clean_text(f"{batch.call_sid}:{e.key}") for e in batch.events]
                for batch in batches]
        rows: dict[str, dict[str, object]] = {}
        for batch, batch_keys in zip(batches, keys, strict=True):
            for key, e in zip(batch_keys, batch.events, strict=True):
                rows.setdefault(key, {"event_key": key, "call_sid": batch.call_sid,
                                      "kind": e.kind, "at": e.at,
                                      "detail": clean_detail(e.detail)})
        inserted = set(connection.execute(_insert_events(dialect),
                                          list(rows.values())).scalars())
        new = len(inserted)
        summaries: dict[str, _Summary] = {}
        voicemails: list[tuple[str, datetime, str | None]] = []
        for n, (batch, batch_keys) in enumerate(zip(batches, keys, strict=True)):
            fresh = [e for key, e in zip(batch_keys, batch.events, strict=True)
                     if key in inserted]
            inserted.difference_update(batch_keys)
            if not fresh:
                continue
            summary = summaries.setdefault(batch.call_sid, _Summary())
            starts = batch.call_sid not in created or n != first[batch.call_sid]
            changes = summary.add(fresh, earliest[n], starts)
            # A voicemail from a person on the register goes on the triage queue (4.7).
            voicemails += [(batch.call_sid, e.at, changes.get("recording_url"))
                           for e in fresh if e.kind == EventKind.VOICEMAIL]
        shapes: dict[tuple, list[dict[str, object]]] = {}
        for sid, summary in summaries.items():
            shape, params = summary.update(sid)
            if shape is not None:
                shapes.setdefault(shape, []).append(params)
        for shape, params in shapes.items():
            connection.execute(_summary_update(*shape), params)
        queue_voicemails(self.session, voicemails)
        return new
