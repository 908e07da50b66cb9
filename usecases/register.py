"""Register changes that keep the database, the audit trail and the routing cache in step."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callflow.register import EntryFields, EntryInvalid
from callflow.review_dates import DEFAULT_MAX_REVIEW_MONTHS
from store.db import transaction
from store.models import AuditRecord, RegisterEntry, Staff
from store.notices import withdraw_unsent
from store.register import RegisterStore, SaveResult, fields_of
from store.routing_cache import RoutingCache
from usecases.register_write import (
    CacheChange,
    EntryInput,
    Progress,
    Refused,
    WriteResult,
    check_and_save,
    each,
)

log = logging.getLogger(__name__)


def register_version(session: Session) -> int:
    """A number that grows with every audited change to the register."""
    return session.scalar(select(func.coalesce(func.max(AuditRecord.id), 0))) or 0


class RegisterService:
    """Writes, lifts and caches entries; the routing cache follows every committed change."""

    def __init__(self, sessions: sessionmaker[Session], cache: RoutingCache,
                 max_review_months: int = DEFAULT_MAX_REVIEW_MONTHS):
        self.sessions = sessions
        self.cache = cache
        # The latest a review may fall after an entry starts or was last reviewed (a setting).
        self.max_review_months = max_review_months

    def write(
        self,
        entries: Sequence[EntryInput],
        actor: str,
        now: datetime,
        today: date,
        *,
        creating: bool | None = None,
        notify: bool = False,
        bulk: bool = False,
        lines: Sequence[int] = (),
        progress: Progress = each,
    ) -> WriteResult:
        """The one way to write the register: check every entry once and, only if all pass,
        save them in one transaction with their audit records, then update the routing cache.

        entries are text fields (CSV rows, a form) or typed fields. creating: True when each
        must be new, False when each must exist, None for either. notify: the customer is told
        by a new notice (policy 5.1), so a change to what it says clears notice_sent_on and is
        listed in WriteResult.renotify. bulk: rebuild the cache after the commit rather than
        update the entries' numbers. lines names the entries in messages (default 1, 2, ...).
        A lift, by any path, withdraws the entry's unsent notices.
        """
        lines = lines or range(1, len(entries) + 1)
        token, version = None, 0
        try:
            with transaction(self.sessions) as session:
                # Checked and saved a chunk at a time; any problem rolls the whole write back.
                saved, renotify, changed, counted = check_and_save(
                    RegisterStore(session, self.max_review_months), entries, lines, today,
                    creating, actor, now, notify, bulk, progress)
                if changed:
                    version = register_version(session)
                    token = self.before_commit()
        except Refused as refused:
            return WriteResult(refused.problems)
        if token is not None:
            self._after_write(token, changed, version, today, bulk)
        return WriteResult(((),) * len(entries), tuple(saved), tuple(renotify), counted)

    def save(self, fields: EntryFields, actor: str, now: datetime, today: date) -> SaveResult:
        """Write one entry's typed fields (see write); raise EntryInvalid if a rule fails."""
        result = self.write([fields], actor, now, today)
        if not result.ok:
            raise EntryInvalid(result.errors)
        return result.saved[0]

    def every_entry(self) -> Iterator[EntryFields]:
        """Every entry's fields, in customer reference order, read in one session."""
        with self.sessions() as session:
            for entry in RegisterStore(session).entries():
                yield fields_of(entry)

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
            numbers += [p.number for p in entry.representative_phones]
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

    def _after_write(self, token: str, changed: Sequence[CacheChange], version: int,
                     today: date, bulk: bool) -> None:
        """After the commit: the changed entries' numbers into the cache, or a rebuild."""
        if bulk or len(changed) > 1 or changed[0].rebuild:
            _fault_test_pause()
            self.after_commit(token, today)
            return
        change = changed[0]
        self._release(token, change.numbers, change.restriction, change.removed, version)

    def _release(self, token: str, numbers, restriction, removed, version: int) -> None:
        try:
            self.cache.release(token, numbers, restriction, removed, version)
        except (redis.RedisError, OSError) as error:
            # The periodic sync rebuilds from the database once Redis answers again.
            log.warning(
                "routing cache not refreshed (%s); sync will catch up", type(error).__name__
            )


def _fault_test_pause() -> None:
    # tests/faults stand a bulk write still between its commit and the cache update, to kill it.
    seconds = os.environ.get("CALLFLOW_FAULT_PAUSE_AFTER_COMMIT")
    if seconds and os.environ.get("CALLFLOW_ENV") == "test":
        time.sleep(float(seconds))
