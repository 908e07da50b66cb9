"""Restriction notices that no longer apply: withdrawn when their entry is lifted or lapses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Notice, RegisterEntry
from store.register import RegisterStore


def withdraw_unsent(session: Session, entry: RegisterEntry, actor: str, now: datetime) -> list[int]:
    """Mark the entry's unsent restriction notices withdrawn, audited; returns their ids."""
    notices = session.scalars(
        select(Notice).where(Notice.entry_id == entry.id, Notice.kind == "restriction",
                             Notice.sent_on.is_(None), Notice.withdrawn_at.is_(None))
        .order_by(Notice.id)
    ).all()
    for notice in notices:
        notice.withdrawn_at = now
    if notices:
        count = len(notices)
        RegisterStore(session).audit(
            entry, actor, "notice_withdrawn", now,
            {"unsent_notices": [str(count), "withdrawn"]},
        )
    return [n.id for n in notices]
