"""Callers waiting for a pool agent, oldest first, in Redis: the other half of the agent pool.

A caller nobody could take joins the index; an agent who becomes available is offered the
longest-waiting caller at once (workers/calls.py, offer_waiting_caller) instead of waiting for
the caller's next retry. Both ways of matching a caller with an agent are one Lua script each,
so two dispatchers never give one caller to two agents nor one agent two callers: a caller given
to an agent is marked (GIVEN_KEY) until that agent is released from the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import redis
from rq import Queue

from callflow.call_state import WAITING_STATES
from store.agent_pool import CURRENT_CALL_KEY, GIVEN_KEY, IDLE_KEY, STATE_KEY
from store.live_call import LIVE_KEY

WAITING_KEY = "callflow:waiting:callers"  # sorted set: CallSid -> when they began to wait
ATTEMPTS_KEY = "callflow:waiting:attempts"  # hash: CallSid -> the dispatch attempt that queued it
GIVEN_TTL_SECONDS = 86400  # a mark outlives any call; a release deletes it sooner
OFFER_JOB = "workers.calls.offer_waiting_caller"
OFFER_RESULT_TTL = 600

# A caller's dispatch (KEYS[6] is this caller's GIVEN_KEY): already given to an agent, or take
# the longest-idle agent, or join the waiting callers (keeping the time they first joined).
_CLAIM_FOR_CALLER = """
local given = redis.call('GET', KEYS[6])
if given then return {'given', given} end
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then
  redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
  return {'waiting'}
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HSET', KEYS[2], popped[1], 'busy')
redis.call('HSET', KEYS[3], popped[1], ARGV[1])
redis.call('SET', KEYS[6], popped[1], 'EX', ARGV[4])
return {'claimed', popped[1]}
"""

# An agent became available (ARGV[1]): if they are still idle, give them the longest-waiting
# caller not already given to someone, and mark them busy on that call. Callers whose live state
# (ARGV[4] is its prefix) says they no longer wait are dropped on the way, however many:
# their own hang-up job, which takes them out, may still be queued behind others. The caller's
# GIVEN_KEY and live hash are built here from their prefixes (ARGV[2], ARGV[4]), keys not
# declared up front: fine on one Redis and under Sentinel, not on Redis Cluster (which callflow
# does not support).
_OFFER_TO_AGENT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return false end
local still_waiting = {""" + ", ".join(f"['{state.value}'] = true"
                                       for state in sorted(WAITING_STATES)) + """}
while true do
  local popped = redis.call('ZPOPMIN', KEYS[4])
  if #popped == 0 then return false end
  local sid = popped[1]
  local state = redis.call('HGET', ARGV[4] .. sid, 'state')
  -- A caller gone keeps their attempt (KEYS[5]) for their hang-up job, which takes it.
  if not state or still_waiting[state] then
    local attempt = redis.call('HGET', KEYS[5], sid) or '0'
    redis.call('HDEL', KEYS[5], sid)
    local given = ARGV[2] .. sid
    if redis.call('EXISTS', given) == 0 then
      redis.call('ZREM', KEYS[1], ARGV[1])
      redis.call('HSET', KEYS[2], ARGV[1], 'busy')
      redis.call('HSET', KEYS[3], ARGV[1], sid)
      redis.call('SET', given, ARGV[1], 'EX', ARGV[3])
      return {sid, attempt, popped[2]}
    end
  end
end
"""


class Match(StrEnum):
    """What a waiting caller's dispatch found."""

    CLAIMED = "claimed"  # an idle agent was taken for them
    WAITING = "waiting"  # nobody is free: they wait in the index, oldest first
    GIVEN = "given"  # an agent who became available was already given them


@dataclass(frozen=True)
class CallerMatch:
    """A caller's dispatch: what it found, and the agent when there is one."""

    match: Match
    staff_id: int | None = None


@dataclass(frozen=True)
class WaitingCaller:
    """A caller offered to an agent: their call, dispatch attempt and when they began to wait."""

    call_sid: str
    attempt: int
    since: float


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class WaitingCallers:
    """The callers waiting for a pool agent, and the two atomic ways of matching them."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def claim_agent(self, call_sid: str, attempt: int, since: float) -> CallerMatch:
        """Take the longest-idle agent for this caller, or queue them (from `since`) if none."""
        answer = self.client.eval(_CLAIM_FOR_CALLER, 6, IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY,
                                  WAITING_KEY, ATTEMPTS_KEY, GIVEN_KEY.format(call_sid=call_sid),
                                  call_sid, attempt, since, GIVEN_TTL_SECONDS)
        match = Match(_text(answer[0]))
        return CallerMatch(match, int(answer[1]) if len(answer) > 1 else None)

    def offer(self, staff_id: int) -> WaitingCaller | None:
        """Give this agent, if still idle, the longest-waiting caller still waiting (those who
        hung up are dropped from the index); None if either is missing."""
        answer = self.client.eval(_OFFER_TO_AGENT, 5, IDLE_KEY, STATE_KEY, CURRENT_CALL_KEY,
                                  WAITING_KEY, ATTEMPTS_KEY, staff_id,
                                  GIVEN_KEY.format(call_sid=""), GIVEN_TTL_SECONDS,
                                  LIVE_KEY.format(sid=""))
        if not answer:
            return None
        call_sid, attempt, since = answer
        return WaitingCaller(_text(call_sid), int(attempt), float(since))

    def leave(self, call_sid: str) -> int | None:
        """The caller no longer waits for an agent (they hung up, or went to voicemail): the
        dispatch attempt that queued them, None if they were not waiting in the index."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(ATTEMPTS_KEY, call_sid)
        pipe.zrem(WAITING_KEY, call_sid)
        pipe.hdel(ATTEMPTS_KEY, call_sid)
        attempt, _removed, _forgotten = pipe.execute()
        return None if attempt is None else int(attempt)

    def count(self) -> int:
        """How many callers wait for an agent."""
        return int(self.client.zcard(WAITING_KEY))

    def callers(self) -> list[str]:
        """The waiting callers' CallSids, longest-waiting first."""
        return [_text(sid) for sid in self.client.zrange(WAITING_KEY, 0, -1)]

    def given_to(self, call_sid: str) -> int | None:
        """The agent a waiting caller was given to, until that agent is released from the call."""
        value = self.client.get(GIVEN_KEY.format(call_sid=call_sid))
        return int(value) if value else None

    def request_offer(self, queue: Queue, staff_id: int) -> bool:
        """An agent became available: start the job offering them the longest-waiting caller.

        Nothing is queued when nobody waits (a caller who joins after this finds the agent idle
        on their own dispatch). False when no job was queued.
        """
        if not self.count():
            return False
        queue.enqueue(OFFER_JOB, staff_id, **_offer_job(staff_id))
        return True

    def request_offer_later(self, queue: Queue, staff_id: int, seconds: float) -> None:
        """Offer this agent the longest-waiting caller when their recovery time is over."""
        queue.enqueue_in(timedelta(seconds=seconds), OFFER_JOB, staff_id, **_offer_job(staff_id))


def _offer_job(staff_id: int) -> dict[str, object]:
    return {"result_ttl": OFFER_RESULT_TTL,
            "description": f"offer the longest-waiting caller to staff {staff_id}"}
