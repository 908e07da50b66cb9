"""Letters that no longer apply: withdrawn when their entry is lifted or lapses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Notice, RegisterEntry
from store.register import RegisterStore

# Unsent letters about a restriction still in force: once it ends, sending one would mislead
# (the lift, lapse and decision letters that say it ended are written after the withdrawal).
STALE_WHEN_ENDED = ("restriction", "review_outcome", "appeal_received")


def withdraw_unsent(session: Session, entry: RegisterEntry, actor: str, now: datetime) -> list[int]:
    """Mark the entry's unsent letters about the restriction in force withdrawn, audited;
    returns their ids."""
    notices = session.scalars(
        select(Notice).where(Notice.entry_id == entry.id, Notice.kind.in_(STALE_WHEN_ENDED),
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
