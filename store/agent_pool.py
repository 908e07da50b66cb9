"""Agents' availability in Redis: what the call path reads to find the longest-idle agent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import redis

IDLE_KEY = "callflow:agents:idle"
STATE_KEY = "callflow:agents:state"
CURRENT_CALL_KEY = "callflow:agents:call"
WRAP_UP_KEY = "callflow:agents:wrap-up"
# Set while an agent recovers after an abusive call, expiring when their recovery ends.
RECOVERY_KEY = "callflow:agents:recovering:{staff_id}"
RECOVERING_KEY = "callflow:agents:recovering"  # the set of who may be recovering
# Which agent a waiting pool caller was given to (store/waiting_callers.py), until released.
GIVEN_KEY = "callflow:waiting:given:{call_sid}"


class Availability(StrEnum):
    """An agent's availability, as the console sets it."""

    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    WRAP_UP = "wrap-up"  # ended a call without its reason: no calls until it is given
    RECOVERING = "recovering"  # time to recover after an abusive call: no calls until it ends


# Every script that makes an agent available again goes through this: while their recovery after
# an abusive call runs (KEYS[5] exists; Redis expires it) they are recovering, not idle.
_BECOME_AVAILABLE = """
local function become_available(id, now)
  if redis.call('EXISTS', KEYS[5]) == 1 then
    redis.call('HSET', KEYS[2], id, 'recovering')
    redis.call('ZREM', KEYS[1], id)
    return 2
  end
  redis.call('HSET', KEYS[2], id, 'available')
  redis.call('ZADD', KEYS[1], 'NX', now, id)
  return 1
end
"""

# Pop the longest-idle agent and mark them busy in one step, so two dispatches never share one.
_CLAIM = """
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
redis.call('HSET', KEYS[2], popped[1], 'busy')
redis.call('HSET', KEYS[3], popped[1], ARGV[1])
return popped[1]
"""

# Free an agent after a call, unless they have moved on to another call or chose to be away;
# a pool caller they were given (KEYS[6], store/waiting_callers.py) may be given to another.
_RELEASE = _BECOME_AVAILABLE + """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
if redis.call('HGET', KEYS[2], ARGV[1]) == 'busy' then become_available(ARGV[1], ARGV[3]) end
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
if state == 'recovering' then return 'away' end
if state ~= 'available' and state ~= 'busy' then return 'away' end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], 'busy')
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 'claimed'
"""

# Becoming available waits for an owed wrap-up: the agent stays in wrap-up, out of the idle set;
# and for recovery (2), unless they chose to come back early (ARGV[3] = 1) where that is allowed.
_SET_AVAILABLE = _BECOME_AVAILABLE + """
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], 'wrap-up')
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[5]) end
return become_available(ARGV[1], ARGV[2])
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
_FINISH_WRAP_UP = _BECOME_AVAILABLE + """
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) ~= 'wrap-up' then return 1 end
if redis.call('HGET', KEYS[3], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], 'busy')
else
  become_available(ARGV[1], ARGV[3])
end
return 1
"""

# Recovery after an abusive call (ARGV[2]: milliseconds; ARGV[3]: when it ends, as the service's
# clock reads it, kept for display): out of the idle set until it expires.
# An agent still on the call or owing its reason stays busy or in wrap-up, and recovers when that
# is over; an agent who chose away stays away. KEYS[6] lists who is recovering, for supervisors.
_BEGIN_RECOVERY = """
redis.call('SET', KEYS[5], ARGV[3], 'PX', ARGV[2])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) == 'available' then
  redis.call('HSET', KEYS[2], ARGV[1], 'recovering')
end
return 1
"""

# Milliseconds of recovery left and when it ends (ARGV[3] = 1 ends it now); once over, a
# recovering agent becomes available (idle from ARGV[2]) and -1 is returned.
_SETTLE_RECOVERY = _BECOME_AVAILABLE + """
if ARGV[3] == '1' then redis.call('DEL', KEYS[5]) end
local left = redis.call('PTTL', KEYS[5])
if left > 0 then return {left, redis.call('GET', KEYS[5])} end
redis.call('DEL', KEYS[5])
redis.call('SREM', KEYS[6], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[1]) == 'recovering' then become_available(ARGV[1], ARGV[2]) end
return -1
"""

PASSED_ON_KEY = "callflow:agents:passed-on:{staff_id}"
PASSED_ON_TTL_SECONDS = 3600


class Claim(StrEnum):
    """What became of trying to take a named member of staff for a call."""

    CLAIMED = "claimed"
    BUSY = "busy"  # on another call
    AWAY = "away"  # away or signed out


@dataclass(frozen=True)
class Recovery:
    """An agent's time to recover after an abusive call."""

    seconds_left: float  # by Redis's clock, which expires it
    until: float  # epoch seconds, as the service's clock read it when the recovery began


class AgentPool:
    """Availability per staff id; idle agents ordered by how long they have waited."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def set_availability(self, staff_id: int, state: Availability,
                         now: float | None = None, *, early_return: bool = False) -> bool:
        """Set an agent's availability; becoming available starts their idle time.

        False when they owe a wrap-up, or are recovering after an abusive call: they stay in
        wrap-up or recovering instead. `early_return` ends their recovery now (where the
        centre allows it).
        """
        if state is Availability.AVAILABLE:
            return self.client.eval(_SET_AVAILABLE, 5, *self._keys_for(staff_id), staff_id,
                                    now or time.time(), "1" if early_return else "0") == 1
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(STATE_KEY, staff_id, state.value)
        if state is Availability.AVAILABLE:
            pipe.zadd(IDLE_KEY, {staff_id: now or time.time()}, nx=True)
        else:
            pipe.zrem(IDLE_KEY, staff_id)
        pipe.execute()
        return True

    def _keys_for(self, staff_id: int) -> tuple[str, str, str, str, str]:
        return (IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY, WRAP_UP_KEY,
                RECOVERY_KEY.format(staff_id=staff_id))

    def begin_recovery(self, staff_id: int, seconds: int, until: float) -> None:
        """Time to recover after an abusive call: no calls for this agent for `seconds`.

        `until` (epoch seconds) is when that is, as the caller's clock reads it, for display.
        """
        self.client.eval(_BEGIN_RECOVERY, 6, *self._keys_for(staff_id), RECOVERING_KEY,
                         staff_id, max(1, seconds) * 1000, until)

    def end_recovery(self, staff_id: int, now: float | None = None) -> None:
        """End this agent's recovery now (the end of call it followed did not happen)."""
        self._settle(staff_id, now, end_now=True)

    def recovery(self, staff_id: int, now: float | None = None) -> Recovery | None:
        """This agent's recovery, if it is still running.

        A recovery found over is settled: a recovering agent becomes available.
        """
        return self._settle(staff_id, now, end_now=False)

    def recovering(self, now: float | None = None) -> dict[int, Recovery]:
        """Every agent still recovering, and their recovery (over ones are settled)."""
        found = {}
        for member in self.client.smembers(RECOVERING_KEY):
            recovery = self.recovery(int(member), now)
            if recovery is not None:
                found[int(member)] = recovery
        return found

    def _settle(self, staff_id: int, now: float | None, *, end_now: bool) -> Recovery | None:
        answer = self.client.eval(_SETTLE_RECOVERY, 6, *self._keys_for(staff_id),
                                  RECOVERING_KEY, staff_id, now or time.time(),
                                  "1" if end_now else "0")
        if not isinstance(answer, list):
            return None
        left, until = answer
        return Recovery(seconds_left=left / 1000, until=float(until))

    def begin_wrap_up(self, staff_id: int, call_sid: str) -> None:
        """The agent ended this call without its reason: no calls for them until they give it."""
        self.client.eval(_BEGIN_WRAP_UP, 5, *self._keys_for(staff_id), staff_id, call_sid)

    def finish_wrap_up(self, staff_id: int, call_sid: str, now: float | None = None) -> bool:
        """The reason for this call is given: the agent may take calls again; False if not owed."""
        return bool(self.client.eval(_FINISH_WRAP_UP, 5, *self._keys_for(staff_id), staff_id,
                                     call_sid, now or time.time()))

    def wrap_up_owed(self, staff_id: int) -> str | None:
        """The call whose reason this agent still owes, if any."""
        value = self.client.hget(WRAP_UP_KEY, staff_id)
        return value.decode() if value else None

    def availability(self, staff_id: int) -> Availability:
        """An agent's availability (away until they say otherwise)."""
        value = self.client.hget(STATE_KEY, staff_id)
        return Availability(value.decode()) if value else Availability.AWAY

    def claim_longest_idle(self, call_sid: str) -> int | None:
        """Take the longest-idle available agent for a call, marking them busy.

        The call path uses WaitingCallers.claim_agent (store/waiting_callers.py), which also
        queues the caller when nobody is free and marks whom they were given to.
        """
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
        return bool(self.client.eval(_RELEASE, 6, *self._keys_for(staff_id),
                                     GIVEN_KEY.format(call_sid=call_sid), staff_id, call_sid,
                                     now or time.time()))

    def current_call(self, staff_id: int) -> str | None:
        """The call an agent is on or being rung for."""
        value = self.client.hget(CURRENT_CALL_KEY, staff_id)
        return value.decode() if value else None
