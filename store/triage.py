"""The triage queue in the database: voicemails and messages left by people on the register."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from callflow.triage import TriageSource
from store.models import Call, RegisterEntry, TriageItem


def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(TriageItem)


def queue_voicemails(session: Session, voicemails: Iterable[tuple[str, datetime, str | None]]
                     ) -> int:
    """Queue (call_sid, left at, recording URL) voicemails whose caller is on the register;
    a call already queued is left as it is, so a replayed event queues nothing twice."""
    queued = 0
    for call_sid, at, recording_url in voicemails:
        row = session.execute(
            select(RegisterEntry.id, RegisterEntry.customer_ref)
            .join(Call, Call.entry_id == RegisterEntry.id)
            .where(Call.call_sid == call_sid)
        ).first()
        if row is None:
            continue
        added = session.scalar(
            _insert(session).values(
                call_sid=call_sid, entry_id=row[0], customer_ref=row[1],
                source=TriageSource.VOICEMAIL.value, received_at=at,
                recording_url=recording_url or None, summary="", notes="",
            ).on_conflict_do_nothing(index_elements=["call_sid"]).returning(TriageItem.id)
        )
        queued += added is not None
    return queued


def unqueued_voicemails(session: Session, limit: int = 500
                        ) -> list[tuple[str, datetime, str | None]]:
    """Voicemails of callers on the register that are not on the queue yet (a voicemail whose
    event landed before the call's lookup did), oldest first."""
    rows = session.execute(
        select(Call.call_sid, Call.started_at, Call.recording_url)
        .outerjoin(TriageItem, TriageItem.call_sid == Call.call_sid)
        .where(Call.voicemail.is_(True), Call.entry_id.is_not(None), TriageItem.id.is_(None))
        .order_by(Call.started_at, Call.id)
        .limit(limit)
    ).all()
    return [(sid, at, url) for sid, at, url in rows if at is not None]


def open_items(session: Session) -> list[TriageItem]:
    """Items nobody has handled yet, oldest first."""
    return list(session.scalars(
        select(TriageItem).where(TriageItem.handled_at.is_(None))
        .order_by(TriageItem.received_at, TriageItem.id)
    ))


def handled_items(session: Session, limit: int = 50) -> list[TriageItem]:
    """The most recently handled items, newest first."""
    return list(session.scalars(
        select(TriageItem).where(TriageItem.handled_at.is_not(None))
        .options(selectinload(TriageItem.handled_by))
        .order_by(TriageItem.handled_at.desc(), TriageItem.id.desc()).limit(limit)
    ))


def items_for(session: Session, customer_ref: str, entry_id: int | None) -> list[TriageItem]:
    """Every item held about one person, oldest first (subject access)."""
    match = TriageItem.customer_ref == customer_ref
    if entry_id is not None:
        match = match | (TriageItem.entry_id == entry_id)
    return list(session.scalars(
        select(TriageItem).where(match).options(selectinload(TriageItem.handled_by))
        .order_by(TriageItem.received_at, TriageItem.id)
    ))
