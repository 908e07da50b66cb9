"""Call limits (policy 4.6) in storage: the entry's columns, and the tally of calls in Redis.

The call path judges a frequency limit without the database: each call put through under a
limit is added to a sorted set per register entry (scored by when it was answered), and the
incoming call reads the recent ones in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import redis

from callflow.call_limits import NO_LIMITS, CallLimits, LimitPeriod
from store.models import RegisterEntry

TALLY_KEY = "callflow:limits:calls:{entry_id}"
# Long enough for a weekly limit, with a day to spare; the set expires with its last call.
KEEP = timedelta(days=8)


def limits_of(entry: RegisterEntry) -> CallLimits:
    """An entry's call limits as stored (no columns set: no limits)."""
    if entry.max_calls is None and entry.max_call_minutes is None:
        return NO_LIMITS
    return CallLimits(entry.max_calls, LimitPeriod(entry.max_calls_per or LimitPeriod.DAY),
                      entry.max_call_minutes)


class CallTally:
    """The calls put through lately for each register entry under a frequency limit."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def recent(self, entry_id: int, since: datetime) -> tuple[datetime, ...]:
        """When the entry's calls since `since` were answered, oldest first."""
        scores = self.client.zrangebyscore(TALLY_KEY.format(entry_id=entry_id),
                                           since.timestamp(), "+inf", withscores=True)
        return tuple(datetime.fromtimestamp(score, UTC) for _member, score in scores)

    def count(self, entry_id: int, call_sid: str, answered: datetime) -> bool:
        """Count a call (once: a repeat changes nothing); True if it was new."""
        key = TALLY_KEY.format(entry_id=entry_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, {call_sid: answered.timestamp()}, nx=True)
        pipe.zremrangebyscore(key, "-inf", (answered - KEEP).timestamp())
        pipe.expire(key, int(KEEP.total_seconds()))
        added, _dropped, _expiry = pipe.execute()
        return bool(added)

    def forget(self, entry_ids: Sequence[int]) -> None:
        """Drop the tallies of entries (for example when their data is erased)."""
        if entry_ids:
            self.client.delete(*(TALLY_KEY.format(entry_id=i) for i in entry_ids))
