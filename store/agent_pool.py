"""Agents' availability in Redis: what the call path reads to find the longest-idle agent."""

from __future__ import annotations

import time
from enum import StrEnum

import redis

IDLE_KEY = "callflow:agents:idle"
STATE_KEY = "callflow:agents:state"
CURRENT_CALL_KEY = "callflow:agents:call"


class Availability(StrEnum):
    """An agent's availability, as the console sets it."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"


# Pop the longest-idle agent and mark them busy in one step, so two dispatches never share one.
_CLAIM = """
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
redis.call('HSET', KEYS[2], popped[1], 'busy')
redis.call('HSET', KEYS[3], popped[1], ARGV[1])
return popped[1]
"""

# Free an agent after a call, unless they have moved on to another call or chose to be away.
_RELEASE = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) == 'busy' then
  redis.call('HSET', KEYS[2], ARGV[1], 'available')
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""


class AgentPool:
    """Availability per staff id; idle agents ordered by how long they have waited."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def set_availability(self, staff_id: int, state: Availability,
                         now: float | None = None) -> None:
        """Set an agent's availability; becoming available starts their idle time."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(STATE_KEY, staff_id, state.value)
        if state is Availability.AVAILABLE:
            pipe.zadd(IDLE_KEY, {staff_id: now or time.time()}, nx=True)
        else:
            pipe.zrem(IDLE_KEY, staff_id)
        pipe.execute()

    def availability(self, staff_id: int) -> Availability:
        """An agent's availability (away until they say otherwise)."""
        value = self.client.hget(STATE_KEY, staff_id)
        return Availability(value.decode()) if value else Availability.AWAY

    def claim_longest_idle(self, call_sid: str) -> int | None:
        """Take the longest-idle available agent for a call, marking them busy."""
        staff_id = self.client.eval(_CLAIM, 3, IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY, call_sid)
        return int(staff_id) if staff_id else None

    def assign(self, staff_id: int, call_sid: str) -> None:
        """Mark a named member of staff (a designated contact) busy on a call."""
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(IDLE_KEY, staff_id)
        pipe.hset(STATE_KEY, staff_id, Availability.BUSY.value)
        pipe.hset(CURRENT_CALL_KEY, staff_id, call_sid)
        pipe.execute()

    def release(self, staff_id: int, call_sid: str, now: float | None = None) -> bool:
        """Free an agent from this call; False if they were not on it."""
        return bool(self.client.eval(_RELEASE, 3, IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY,
                                     staff_id, call_sid, now or time.time()))

    def current_call(self, staff_id: int) -> str | None:
        """The call an agent is on or being rung for."""
        value = self.client.hget(CURRENT_CALL_KEY, staff_id)
        return value.decode() if value else None
