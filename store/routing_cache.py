"""The Redis copy of the register that the call path reads: one hash, E.164 to routing view."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

import redis

from callflow.register import Restriction

CACHE_KEY = "callflow:routing"
BUILDING_KEY = "callflow:routing:building"
# Writers between "about to commit" and "cache updated", by token, scored by when they began.
PENDING_KEY = "callflow:routing:pending"
# Grows with every hold and release, so that a rebuild can tell that the register moved under it.
EPOCH_KEY = "callflow:routing:epoch"
# A field no E.164 number can collide with; its presence says the hash is complete.
READY_FIELD = "_ready"
# Set by a rebuild: the hash is complete but for the changes of the writers still pending.
BUILT_FIELD = "_built"
# A writer pending this long is presumed dead (killed between hold and release): its
# transaction has ended one way or the other, so a rebuild that reads afterwards covers it.
STALE_AFTER_MS = 30_000

# Before a register write commits: the hash stops being trusted, so the call path reads the
# database until release (or a rebuild) makes it complete again. ARGV: token.
_HOLD = """
redis.call('HDEL', KEYS[1], '_ready')
local now = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), ARGV[1])
return redis.call('INCR', KEYS[3])
"""

# After the commit: apply the writer's change and, when no other writer is pending on a hash a
# rebuild made, say it is complete again. ARGV: token, version, count to drop, those, pairs.
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
local drop = tonumber(ARGV[3])
for i = 4, 3 + drop do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 4 + drop, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local built = redis.call('HGET', KEYS[1], '_built')
if not built then return 0 end
if tonumber(ARGV[2]) > tonumber(built) then
  built = ARGV[2]
  redis.call('HSET', KEYS[1], '_built', built)
end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], '_ready', built)
return 1
"""

# A rebuild swaps its hash in only if no writer held or released since it began reading the
# database and none is pending but the presumed dead and the rebuilding writer itself, whose
# token it then drops. ARGV: epoch at start, stale cut-off (ms), the rebuilding writer's token.
_SWAP = """
if tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[4]) return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local mine = redis.call('ZSCORE', KEYS[2], ARGV[3])
if redis.call('ZCARD', KEYS[2]) > (mine and 1 or 0) then redis.call('DEL', KEYS[4]) return 0 end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('RENAME', KEYS[4], KEYS[1])
return 1
"""

_START = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return {redis.call('GET', KEYS[1]) or '0', ms}
"""


def encode(restriction: Restriction) -> str:
    """The cached form: ids, dates and arrangements only, no names or notes."""
    return json.dumps(restriction.to_cache(), separators=(",", ":"))


def decode(value: str) -> Restriction:
    """Rebuild a Restriction from its cached form."""
    return Restriction.from_cache(json.loads(value))


class RoutingCache:
    """Keeps the routing hash in step with the register and reads it in one round trip."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.last_swapped = False

    def fetch(self, number: str) -> tuple[bool, Restriction | None]:
        """(ready, restriction or None); not ready means the hash must not be trusted."""
        ready, value = self.read(number)
        return ready, (decode(value) if value else None)

    def read(self, number: str) -> tuple[bool, bytes | None]:
        """(ready, the number's routing value as stored, or None when it is not listed)."""
        value, ready = self.client.hmget(CACHE_KEY, [number, READY_FIELD])
        return ready is not None, value

    def hold(self) -> str:
        """Before a register write commits: stop trusting the hash; the token for release."""
        token = uuid.uuid4().hex
        self.client.eval(_HOLD, 3, CACHE_KEY, PENDING_KEY, EPOCH_KEY, token)
        return token

    def release(
        self,
        token: str,
        numbers: Iterable[str],
        restriction: Restriction | None,
        removed: Iterable[str] = (),
        version: int = 0,
    ) -> bool:
        """After the commit: point numbers at a restriction (None removes them); True if the
        hash is complete again."""
        gone = list(removed) + ([] if restriction else list(numbers))
        args: list[str] = [token, str(version), str(len(gone)), *gone]
        if restriction is not None:
            value = encode(restriction)
            for number in numbers:
                args += [number, value]
        return bool(self.client.eval(_RELEASE, 3, CACHE_KEY, PENDING_KEY, EPOCH_KEY, *args))

    def put(
        self,
        numbers: Iterable[str],
        restriction: Restriction | None,
        removed: Iterable[str] = (),
        version: int = 0,
    ) -> bool:
        """Hold and release at once, for a change already committed."""
        return self.release(self.hold(), numbers, restriction, removed, version)

    def version(self) -> int | None:
        """The register version the hash reflects, or None when it is not complete."""
        value = self.client.hget(CACHE_KEY, READY_FIELD)
        return None if value is None else int(value)

    def start_rebuild(self) -> tuple[int, int]:
        """Where the writers stand; take it before the database is read for a rebuild."""
        epoch, started_ms = self.client.eval(_START, 1, EPOCH_KEY)
        return int(epoch), int(started_ms)

    def rebuild(
        self,
        pairs: Iterable[tuple[str, Restriction]],
        version: int = 0,
        started: tuple[int, int] | None = None,
        token: str = "",
        batch: int = 5000,
    ) -> int:
        """Build a fresh hash beside the live one and swap it in atomically.

        started is start_rebuild() taken before the database was read for pairs: the swap is
        refused, and the live hash left incomplete, if a writer moved the register since.
        token is the rebuilding writer's own hold, released by a successful swap.
        """
        epoch, started_ms = started or self.start_rebuild()
        building = f"{BUILDING_KEY}:{uuid.uuid4().hex}"
        count = 0
        chunk: dict[str, str] = {}
        try:
            for number, restriction in pairs:
                chunk[number] = encode(restriction)
                count += 1
                if len(chunk) >= batch:
                    self.client.hset(building, mapping=chunk)
                    chunk = {}
            chunk[READY_FIELD] = chunk[BUILT_FIELD] = str(version)
            self.client.hset(building, mapping=chunk)
            self.last_swapped = bool(self.client.eval(
                _SWAP, 4, CACHE_KEY, PENDING_KEY, EPOCH_KEY, building,
                int(epoch), int(started_ms) - STALE_AFTER_MS, token,
            ))
        finally:
            self.client.delete(building)
        return count
