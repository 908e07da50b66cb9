"""Register changes that keep the database, the audit trail and the routing cache in step."""

from __future__ import annotations

import logging
from datetime import date, datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callflow.register import EntryFields
from store.db import transaction
from store.models import AuditRecord, RegisterEntry, Staff
from store.register import RegisterStore, SaveResult, restriction_of
from store.routing_cache import RoutingCache

log = logging.getLogger(__name__)


def register_version(session: Session) -> int:
    """A number that grows with every audited change to the register."""
    return session.scalar(select(func.coalesce(func.max(AuditRecord.id), 0))) or 0


class RegisterService:
    """Saves, lifts and caches entries; the routing cache follows every committed change."""

    def __init__(self, sessions: sessionmaker[Session], cache: RoutingCache):
        self.sessions = sessions
        self.cache = cache

    def save(self, fields: EntryFields, actor: str, now: datetime, today: date) -> SaveResult:
        """Validate, store and audit an entry, then refresh its numbers in the routing cache."""
        with transaction(self.sessions) as session:
            store = RegisterStore(session)
            existing = store.get(fields.customer_ref)
            old_numbers = {p.number for p in existing.phones} if existing else set()
            result = store.save(fields, actor, now, today)
            entry = store.get_by_id(result.entry_id)
            restriction = None if entry.lifted_at else restriction_of(entry)
            numbers = [p.number for p in entry.phones]
            version = register_version(session)
        if result.action != "unchanged":
            self._refresh(numbers, restriction, old_numbers - set(numbers), version)
        return result

    def lift(self, customer_ref: str, actor_email: str, reason: str, now: datetime) -> None:
        """Lift an entry early and drop its numbers from the routing cache."""
        with transaction(self.sessions) as session:
            store = RegisterStore(session)
            actor = session.scalar(select(Staff).where(Staff.email == actor_email))
            if actor is None:
                raise PermissionError(f"{actor_email} is not a staff member")
            entry: RegisterEntry = store.lift(customer_ref, actor, reason, now)
            numbers = [p.number for p in entry.phones]
            version = register_version(session)
        self._refresh(numbers, None, (), version)

    def rebuild_cache(self, today: date) -> int:
        """Rebuild the routing cache from the database; returns the numbers cached."""
        with self.sessions() as session:
            version = register_version(session)
            return self.cache.rebuild(RegisterStore(session).routable(today), version)

    def sync_cache(self, today: date) -> bool:
        """Rebuild the cache if it is missing or behind the register; True if it rebuilt."""
        with self.sessions() as session:
            current = register_version(session)
        cached = self.cache.version()
        if cached is not None and cached >= current:
            return False
        self.rebuild_cache(today)
        return True

    def _refresh(self, numbers, restriction, removed, version: int) -> None:
        try:
            self.cache.put(numbers, restriction, removed, version)
        except (redis.RedisError, OSError) as error:
            # The periodic sync rebuilds from the database once Redis answers again.
            log.warning(
                "routing cache not refreshed (%s); sync will catch up", type(error).__name__
            )
