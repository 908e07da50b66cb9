"""The Redis copy of the register that the call path reads: one hash, E.164 to routing view."""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from callflow.register import Restriction

CACHE_KEY = "callflow:routing"
BUILDING_KEY = "callflow:routing:building"
# A field no E.164 number can collide with; its presence says the hash is complete.
READY_FIELD = "_ready"


# Changing a hash that is not complete would make it look complete to nobody and help no one:
# leave it for the next rebuild. ARGV: version, count of numbers to drop, those, then pairs.
_PUT_IF_READY = """
if redis.call('HEXISTS', KEYS[1], '_ready') == 0 then return 0 end
local drop = tonumber(ARGV[2])
for i = 3, 2 + drop do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = 3 + drop, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local current = tonumber(redis.call('HGET', KEYS[1], '_ready'))
if tonumber(ARGV[1]) > current then redis.call('HSET', KEYS[1], '_ready', ARGV[1]) end
return 1
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

    def fetch(self, number: str) -> tuple[bool, Restriction | None]:
        """(ready, restriction or None); not ready means the hash must not be trusted."""
        value, ready = self.client.hmget(CACHE_KEY, [number, READY_FIELD])
        return ready is not None, (decode(value) if value else None)

    def put(
        self,
        numbers: Iterable[str],
        restriction: Restriction | None,
        removed: Iterable[str] = (),
        version: int = 0,
    ) -> None:
        """Point numbers at a restriction (None removes them) in a complete hash only."""
        gone = list(removed) + ([] if restriction else list(numbers))
        args: list[str] = [str(version), str(len(gone)), *gone]
        if restriction is not None:
            value = encode(restriction)
            for number in numbers:
                args += [number, value]
        self.client.eval(_PUT_IF_READY, 1, CACHE_KEY, *args)

    def version(self) -> int | None:
        """The register version the hash reflects, or None when it is not complete."""
        value = self.client.hget(CACHE_KEY, READY_FIELD)
        return None if value is None else int(value)

    def rebuild(
        self, pairs: Iterable[tuple[str, Restriction]], version: int = 0, batch: int = 5000
    ) -> int:
        """Build a fresh hash beside the live one and swap it in atomically."""
        self.client.delete(BUILDING_KEY)
        count = 0
        chunk: dict[str, str] = {}
        for number, restriction in pairs:
            chunk[number] = encode(restriction)
            count += 1
            if len(chunk) >= batch:
                self.client.hset(BUILDING_KEY, mapping=chunk)
                chunk = {}
        chunk[READY_FIELD] = str(version)
        self.client.hset(BUILDING_KEY, mapping=chunk)
        self.client.rename(BUILDING_KEY, CACHE_KEY)
        return count
