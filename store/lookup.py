"""Look a caller up on the register for the call path: Redis first, the database if it must."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from callflow.phone import caller_key, is_withheld
from callflow.register import Restriction
from store.circuit import CircuitOpen
from store.register import RegisterStore
from store.routing_cache import RoutingCache, decode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallerLookup:
    """What the register says about a caller right now."""

    number: str | None
    withheld: bool
    restriction: Restriction | None = None
    failed: bool = False
    source: str = "cache"


@dataclass(frozen=True)
class CacheRead:
    """What the routing cache said about a number. Not complete: it could not be read, or is
    being rebuilt, so it must not be trusted; value: the number's routing value, if listed."""

    complete: bool
    value: str | bytes | None = None


UNREADABLE = CacheRead(complete=False)


class RegisterLookup:
    """How the call path finds a caller's restriction: answer() decides between the routing
    cache and the database. The incoming call reads the cache in the same Redis round trip as
    its writes (webhooks/incoming.py); lookup() reads it alone, then answers the same way."""

    def __init__(self, cache: RoutingCache, sessions: sessionmaker[Session]):
        self.cache = cache
        self.sessions = sessions

    def lookup(self, raw_from: str | None, today: date) -> CallerLookup:
        """The caller's restriction as it applies today, or none; never raises."""
        number = caller_key(raw_from)
        if number is None:
            return self.without_number(raw_from)
        return self.answer(number, self.read_cache(number), today)

    def read_cache(self, number: str) -> CacheRead:
        """The routing cache's word on number; UNREADABLE when Redis is away."""
        try:
            ready, value = self.cache.read(number)
        except (redis.RedisError, OSError) as error:
            cache_unavailable(error)
            return UNREADABLE
        return CacheRead(complete=ready, value=value)

    def answer(self, number: str, cached: CacheRead, today: date) -> CallerLookup:
        """The caller's restriction as it applies today, from what the cache said, or from the
        database when the cache cannot be trusted; never raises."""
        if not cached.complete:
            return self.from_database(number, today)
        restriction = decode(cached.value) if cached.value else None
        return _applying(number, restriction, today, "cache")

    @staticmethod
    def not_listed(number: str) -> CallerLookup:
        """The answer for a number the cache does not list."""
        return CallerLookup(number=number, withheld=False)

    @staticmethod
    def without_number(raw_from: str | None) -> CallerLookup:
        """The answer for a caller with no number to look up: withheld, or not a number."""
        return CallerLookup(number=None, withheld=is_withheld(raw_from), source="none")

    def from_database(self, number: str, today: date) -> CallerLookup:
        """The answer from the register itself, for when the cache cannot be used; never raises."""
        try:
            with self.sessions() as session:
                restriction = RegisterStore(session).restriction_for(number, today)
            return _applying(number, restriction, today, "database")
        except SQLAlchemyError as error:
            log.error(
                "register check failed: cache and database unavailable (%s)", type(error).__name__
            )
            return CallerLookup(number=number, withheld=False, failed=True, source="none")


def cache_unavailable(error: BaseException) -> None:
    """Log that the routing cache could not be read (an open breaker has logged it already)."""
    if not isinstance(error, CircuitOpen):
        log.warning("routing cache unavailable, reading the database: %s", type(error).__name__)


def _applying(number: str, restriction: Restriction | None, today: date,
              source: str) -> CallerLookup:
    if restriction is not None and not restriction.applies_on(today):
        restriction = None
    return CallerLookup(number=number, withheld=False, restriction=restriction, source=source)
