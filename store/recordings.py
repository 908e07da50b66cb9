"""Call recordings kept as evidence (issue 14 item 7): the call_recordings table's queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from store.models import Call, CallRecording


@dataclass(frozen=True)
class RecordingNews:
    """What one recording status callback says."""

    call_sid: str
    recording_sid: str
    conference_sid: str | None
    status: str
    duration_seconds: int | None
    recording_url: str | None
    at: datetime


def keep(session: Session, news: RecordingNews) -> CallRecording:
    """Record a recording (or its newer status); a repeated callback changes nothing more."""
    row = session.scalar(select(CallRecording)
                         .where(CallRecording.recording_sid == news.recording_sid))
    if row is None:
        row = CallRecording(call_sid=news.call_sid, recording_sid=news.recording_sid,
                            received_at=news.at)
        session.add(row)
    row.conference_sid = news.conference_sid or row.conference_sid
    row.status = news.status
    if news.duration_seconds is not None:
        row.duration_seconds = news.duration_seconds
    row.recording_url = news.recording_url or row.recording_url
    session.flush()
    return row


def of_calls(session: Session, call_sids: Sequence[str]) -> list[CallRecording]:
    """The recordings of these calls, oldest first."""
    if not call_sids:
        return []
    return list(session.scalars(
        select(CallRecording).where(CallRecording.call_sid.in_(list(call_sids)))
        .order_by(CallRecording.received_at, CallRecording.id)))


def older_than(session: Session, cutoff: datetime, limit: int) -> list[CallRecording]:
    """Recordings whose call started before `cutoff` (or, with no call logged, made before)."""
    old_calls = select(Call.call_sid).where(Call.started_at < cutoff)
    logged = select(Call.call_sid)
    return list(session.scalars(
        select(CallRecording).where(or_(
            CallRecording.call_sid.in_(old_calls),
            (CallRecording.received_at < cutoff) & CallRecording.call_sid.not_in(logged)))
        .order_by(CallRecording.received_at, CallRecording.id).limit(limit)))


def forget(session: Session, recording_ids: Sequence[int]) -> int:
    """Delete these rows; returns how many went."""
    if not recording_ids:
        return 0
    return session.execute(
        delete(CallRecording).where(CallRecording.id.in_(list(recording_ids)))
        .execution_options(synchronize_session=False)).rowcount
