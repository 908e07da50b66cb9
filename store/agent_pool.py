"""Agents' availability in Redis: what the call path reads to find the longest-idle agent."""

from __future__ import annotations

import time
from enum import StrEnum

import redis

IDLE_KEY = "callflow:agents:idle"
STATE_KEY = "callflow:agents:state"
CURRENT_CALL_KEY = "callflow:agents:call"
WRAP_UP_KEY = "callflow:agents:wrap-up"


class Availability(StrEnum):
    """An agent's availability, as the console sets it."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    WRAP_UP = "wrap-up"  # ended a call without its reason: no calls until it is given


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


# Take a named member of staff (a designated contact, a fallback) for a call, unless they are Away
# or signed out (no state), or on another call: checked and taken in one step, so an agent who
# goes Away meanwhile is never made busy (and then available) by this call.
_CLAIM_NAMED = """
local current = redis.call('HGET', KEYS[3], ARGV[1])
if current == ARGV[2] then return 'claimed' end
if current then return 'busy' end
local state = redis.call('HGET', KEYS[2], ARGV[1])
if state == 'wrap-up' then return 'busy' end
if state ~= 'available' and state ~= 'busy' then return 'away' end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], 'busy')
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 'claimed'
"""

# Becoming available waits for an owed wrap-up: the agent stays in wrap-up, out of the idle set.
_SET_AVAILABLE = """
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], 'wrap-up')
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], 'available')
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
return 1
"""

# An agent owes the reason for a call they ended: out of the idle set until it is given
# (an agent who chose away stays away, and still owes it).
_BEGIN_WRAP_UP = """
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
local state = redis.call('HGET', KEYS[2], ARGV[1])
if state == 'available' or state == 'busy' then redis.call('HSET', KEYS[2], ARGV[1], 'wrap-up') end
return 1
"""

# The reason is given: available again, or busy until the call's end frees them.
_FINISH_WRAP_UP = """
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) ~= 'wrap-up' then return 1 end
if redis.call('HGET', KEYS[3], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], 'busy')
else
  redis.call('HSET', KEYS[2], ARGV[1], 'available')
  redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1])
end
return 1
"""

PASSED_ON_KEY = "callflow:agents:passed-on:{staff_id}"
PASSED_ON_TTL_SECONDS = 3600


class Claim(StrEnum):
    """What became of trying to take a named member of staff for a call."""

    CLAIMED = "claimed"
    BUSY = "busy"  # on another call
    AWAY = "away"  # away or signed out


class AgentPool:
    """Availability per staff id; idle agents ordered by how long they have waited."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def set_availability(self, staff_id: int, state: Availability,
                         now: float | None = None) -> bool:
        """Set an agent's availability; becoming available starts their idle time.

        False when they owe a wrap-up: they stay in wrap-up instead of becoming available.
        """
        if state is Availability.AVAILABLE:
            return bool(self.client.eval(_SET_AVAILABLE, 4, *self._keys, staff_id,
                                         now or time.time()))
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(STATE_KEY, staff_id, state.value)
        if state is Availability.AVAILABLE:
            pipe.zadd(IDLE_KEY, {staff_id: now or time.time()}, nx=True)
        else:
            pipe.zrem(IDLE_KEY, staff_id)
        pipe.execute()
        return True

    @property
    def _keys(self) -> tuple[str, str, str, str]:
        return IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY, WRAP_UP_KEY

    def begin_wrap_up(self, staff_id: int, call_sid: str) -> None:
        """The agent ended this call without its reason: no calls for them until they give it."""
        self.client.eval(_BEGIN_WRAP_UP, 4, *self._keys, staff_id, call_sid)

    def finish_wrap_up(self, staff_id: int, call_sid: str, now: float | None = None) -> bool:
        """The reason for this call is given: the agent may take calls again; False if not owed."""
        return bool(self.client.eval(_FINISH_WRAP_UP, 4, *self._keys, staff_id, call_sid,
                                     now or time.time()))

    def wrap_up_owed(self, staff_id: int) -> str | None:
        """The call whose reason this agent still owes, if any."""
        value = self.client.hget(WRAP_UP_KEY, staff_id)
        return value.decode() if value else None

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

    def claim_named(self, staff_id: int, call_sid: str) -> Claim:
        """Take a named member of staff for a call, unless they are away or on another call."""
        answer = self.client.eval(_CLAIM_NAMED, 3, IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY,
                                  staff_id, call_sid)
        return Claim(answer.decode() if isinstance(answer, bytes) else answer)

    def note_passed_on(self, staff_id: int, call_sid: str, to: str) -> None:
        """Remember, for their console, that a call for this member of staff went elsewhere."""
        self.client.set(PASSED_ON_KEY.format(staff_id=staff_id), f"{call_sid} {to}",
                        ex=PASSED_ON_TTL_SECONDS)

    def passed_on(self, staff_id: int) -> tuple[str, str] | None:
        """The last call for this member of staff that went elsewhere, and where it went."""
        value = self.client.get(PASSED_ON_KEY.format(staff_id=staff_id))
        if not value:
            return None
        call_sid, _, to = (value.decode() if isinstance(value, bytes) else value).partition(" ")
        return call_sid, to

    def release(self, staff_id: int, call_sid: str, now: float | None = None) -> bool:
        """Free an agent from this call; False if they were not on it."""
        return bool(self.client.eval(_RELEASE, 3, IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY,
                                     staff_id, call_sid, now or time.time()))

    def current_call(self, staff_id: int) -> str | None:
        """The call an agent is on or being rung for."""
        value = self.client.hget(CURRENT_CALL_KEY, staff_id)
        return value.decode() if value else None
