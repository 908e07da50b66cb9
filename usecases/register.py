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
from store.notices import withdraw_unsent
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
        token = None
        with transaction(self.sessions) as session:
            store = RegisterStore(session)
            existing = store.get(fields.customer_ref)
            old_numbers = {p.number for p in existing.phones} if existing else set()
            result = store.save(fields, actor, now, today)
            entry = store.get_by_id(result.entry_id)
            if entry.lifted_at is not None and "lifted_at" in result.changes:
                withdraw_unsent(session, entry, actor, now)
            restriction = None if entry.lifted_at else restriction_of(entry)
            numbers = [p.number for p in entry.phones]
            version = register_version(session)
            if result.action != "unchanged":
                token = self.before_commit()
        if token is not None:
            self._release(token, numbers, restriction, old_numbers - set(numbers), version)
        return result

    def lift(self, customer_ref: str, actor_email: str, reason: str, now: datetime) -> None:
        """Lift an entry early and drop its numbers from the routing cache."""
        with transaction(self.sessions) as session:
            store = RegisterStore(session)
            actor = session.scalar(select(Staff).where(Staff.email == actor_email))
            if actor is None:
                raise PermissionError(f"{actor_email} is not a staff member")
            entry: RegisterEntry = store.lift(customer_ref, actor, reason, now)
            withdraw_unsent(session, entry, actor_email, now)
            numbers = [p.number for p in entry.phones]
            version = register_version(session)
            token = self.before_commit()
        self._release(token, numbers, None, (), version)

    def before_commit(self) -> str:
        """Call inside a register write's transaction, last: until after_commit (or a rebuild,
        should this process die first), the call path reads the database, not the cache.

        When Redis cannot be told this raises and the write rolls back: a cache that still
        looked complete would route a newly restricted caller as normal.
        """
        return self.cache.hold()

    def after_commit(self, token: str, today: date, attempts: int = 3) -> bool:
        """After a bulk write commits: rebuild the cache, which completes it again; True if so.

        Should other writers keep moving the register, the hold is left to go stale and the
        next sync rebuilds: never is the cache called complete without this write in it.
        """
        try:
            for _ in range(attempts):
                self.rebuild_cache(today, token)
                if self.cache.last_swapped:
                    return True
        except (redis.RedisError, OSError) as error:
            log.warning(
                "routing cache not rebuilt (%s); sync will catch up", type(error).__name__
            )
        return False

    def rebuild_cache(self, today: date, token: str = "") -> int:
        """Rebuild the routing cache from the database; returns the numbers cached."""
        started = self.cache.start_rebuild()
        with self.sessions() as session:
            version = register_version(session)
            return self.cache.rebuild(
                RegisterStore(session).routable(today), version, started, token
            )

    def sync_cache(self, today: date) -> bool:
        """Rebuild the cache if it is missing or behind the register; True if it rebuilt."""
        with self.sessions() as session:
            current = register_version(session)
        cached = self.cache.version()
        if cached is not None and cached >= current:
            return False
        self.rebuild_cache(today)
        return self.cache.last_swapped

    def _release(self, token: str, numbers, restriction, removed, version: int) -> None:
        try:
            self.cache.release(token, numbers, restriction, removed, version)
        except (redis.RedisError, OSError) as error:
            # The periodic sync rebuilds from the database once Redis answers again.
            log.warning(
                "routing cache not refreshed (%s); sync will catch up", type(error).__name__
            )
