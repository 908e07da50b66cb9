"""The database spool: call events kept in the system of record while Redis is down.

Every host writes to the same table, so a web process or a whole host that dies after answering
Twilio loses nothing it acknowledged. A pump replays the rows into the stream once Redis is back
(not straight into the call log): each batch also carries the live call's state and the effects
to start, which live in Redis, and the stream keeps one ingest path with its dead letters.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import datetime

import redis
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from store.call_events import Batch, replay, spooled_fields
from store.db import transaction
from store.models import SpooledBatch

DRAIN_BATCH = 500


class DatabaseSpool:
    """The event_spool table: put while Redis is down, drain into the stream once it is back."""

    def __init__(self, sessions: sessionmaker[Session], now: Callable[[], datetime],
                 host: str | None = None):
        self.sessions = sessions
        self.now = now  # the clock is handed in (config/clock.py reads it)
        self.host = (host or socket.gethostname())[:255]

    def put(self, batch: Batch, backup: bool = False) -> None:
        """Keep the batch, committed before the webhook answers; raises if the database cannot.
        A backup is a batch Redis took but too few of its replicas acknowledged in time."""
        fields = json.dumps(spooled_fields(batch, backup), separators=(",", ":"))
        with transaction(self.sessions) as session:
            session.add(SpooledBatch(call_sid=batch.call_sid, fields=fields,
                                     spooled_at=self.now(), host=self.host))

    def drain(self, client: redis.Redis, limit: int = DRAIN_BATCH, rounds: int = 100) -> int:
        """Replay spooled batches into the stream, oldest first; returns how many were moved.

        Each round takes rows in one transaction, locked so that another pump skips them
        (PostgreSQL; SQLite has one writer), writes them to Redis, then deletes them. A pump that
        dies between the two leaves the rows to be replayed again, which is harmless: every
        event and effect lands once by its key, and an ended call stays ended.
        """
        moved = 0
        for _ in range(rounds):
            with transaction(self.sessions) as session:
                rows = session.execute(
                    select(SpooledBatch.id, SpooledBatch.fields).order_by(SpooledBatch.id)
                    .limit(limit).with_for_update(skip_locked=True)
                ).all()
                if not rows:
                    break
                replay(client, [json.loads(row.fields) for row in rows])
                session.execute(delete(SpooledBatch)
                                .where(SpooledBatch.id.in_([row.id for row in rows])))
            moved += len(rows)
            if len(rows) < limit:
                break
        return moved

    def size(self) -> int:
        """How many batches wait to be replayed."""
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(SpooledBatch)) or 0
