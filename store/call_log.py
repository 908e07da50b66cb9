"""The call log tables: each event lands once by its key, and the call's summary row follows it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import case, literal, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.call_events import Batch
from store.models import Call, CallEvent, UTCDateTime

FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


def _insert(session: Session, model):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def summary_changes(kind: str, key: str, at: datetime, detail: dict) -> dict[str, object]:
    """What one event says about the call's summary row (each event sets its own columns)."""
    if kind == "received":
        return {"from_number": detail.get("from"),
                "to_number": detail.get("to") or None, "withheld": bool(detail.get("withheld"))}
    if kind == "lookup":
        return {"entry_id": detail.get("entry_id"), "lookup_failed": bool(detail.get("failed"))}
    if kind == "decision" and key == "decision":
        return {"decision": detail.get("outcome")}
    if kind == "emergency":
        return {"emergency": True}
    if kind == "connected":
        return {"agent_id": detail.get("staff_id")}
    if kind == "voicemail":
        return {"voicemail": True, "recording_url": detail.get("recording_url") or None}
    if kind == "status":
        status = detail.get("status")
        changes: dict[str, object] = {"status": status}
        if status in FINAL_STATUSES:
            changes.update(ended_at=at, duration_seconds=detail.get("duration"))
        return changes
    if kind == "warning":
        return {"warned": True}
    if kind == "ended_by_agent":
        return {"ended_by_agent": True}
    if kind == "incident":
        return {"incident": True}
    return {}


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
            rows = [{"event_key": f"{batch.call_sid}:{e.key}", "call_sid": batch.call_sid,
                     "kind": e.kind, "at": e.at, "detail": e.detail} for e in batch.events]
            inserted = set(self.session.scalars(
                _insert(self.session, CallEvent).values(rows)
                .on_conflict_do_nothing(index_elements=["event_key"])
                .returning(CallEvent.event_key)
            ))
            changes: dict[str, object] = {}
            for event in batch.events:
                if f"{batch.call_sid}:{event.key}" in inserted:
                    changes.update(summary_changes(event.kind, event.key, event.at, event.detail))
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
        return new
