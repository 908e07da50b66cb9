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


class RegisterLookup:
    """The one function the call path uses to find a caller's restriction."""

    def __init__(self, cache: RoutingCache, sessions: sessionmaker[Session]):
        self.cache = cache
        self.sessions = sessions

    def lookup(self, raw_from: str | None, today: date) -> CallerLookup:
        """The caller's restriction as it applies today, or none; never raises."""
        number = caller_key(raw_from)
        if number is None:
            return self.without_number(raw_from)
        try:
            ready, restriction = self.cache.fetch(number)
            if ready:
                return self._applying(number, restriction, today, "cache")
        except (redis.RedisError, OSError) as error:
            log.warning("routing cache unavailable, reading the database: %s", type(error).__name__)
        return self.from_database(number, today)

    @staticmethod
    def without_number(raw_from: str | None) -> CallerLookup:
        """The answer for a caller with no number to look up: withheld, or not a number."""
        return CallerLookup(number=None, withheld=is_withheld(raw_from), source="none")

    def from_cached(self, number: str, cached: str | bytes, today: date) -> CallerLookup:
        """The answer from a routing value the cache held for the number."""
        return self._applying(number, decode(cached), today, "cache")

    def from_database(self, number: str, today: date) -> CallerLookup:
        """The answer from the register itself, for when the cache cannot be used; never raises."""
        try:
            with self.sessions() as session:
                restriction = RegisterStore(session).restriction_for(number, today)
            return self._applying(number, restriction, today, "database")
        except SQLAlchemyError as error:
            log.error(
                "register check failed: cache and database unavailable (%s)", type(error).__name__
            )
            return CallerLookup(number=number, withheld=False, failed=True, source="none")

    @staticmethod
    def _applying(
        number: str, restriction: Restriction | None, today: date, source: str
    ) -> CallerLookup:
        if restriction is not None and not restriction.applies_on(today):
            restriction = None
        return CallerLookup(number=number, withheld=False, restriction=restriction, source=source)
