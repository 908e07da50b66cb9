"""The live call: one Redis hash per call in progress, read and updated only through here.

Fields (all text): state (a CallState), outcome, from, withheld and lookup_failed ("1"/"0"),
entry_id, started, fallback_staff_id, staff_id, ringing_staff_id, ringing_leg_sid,
conference_sid; the console adds warned, warnings, ended_by_agent and end_reason, and
warning_state and warning_at (where the last warning stands, as Twilio reports it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from operator import attrgetter

import redis

from callflow.call_state import CALL_SID_PATTERN, CallState

LIVE_KEY = "callflow:live:{sid}"
LIVE_TTL_SECONDS = 6 * 3600
# The calls in progress, for the supervisors' page: CallSid -> when its live hash expires (epoch
# seconds, by Redis's clock). A call leaves it when it ends; one whose hash expired is trimmed.
LIVE_INDEX_KEY = "callflow:live-calls"

# index_live(key, ttl): the index follows a live hash just written. The index is a key the
# scripts do not declare: fine on one Redis and under Sentinel, not on Redis Cluster (which
# callflow does not support). Expired members are trimmed here too, so the index stays bounded
# when nobody reads it.
INDEX_LIVE_LUA = """
local function index_live(key, ttl)
  local index = '""" + LIVE_INDEX_KEY + """'
  local sid = string.sub(key, """ + str(len(LIVE_KEY.format(sid="")) + 1) + """)
  local now = tonumber(redis.call('TIME')[1])
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  if redis.call('HGET', key, 'state') == 'ended' then
    redis.call('ZREM', index, sid)
  else
    redis.call('ZADD', index, now + tonumber(ttl), sid)
  end
end
"""

# Every write to a live hash goes through this Lua, so every writer keeps its one rule: a call
# that has ended stays ended (Twilio does not promise the order of its callbacks, and a replayed
# or late write must not bring a finished call back to life). Other fields are still written.
# write_live(key, ttl, first): ARGV[first..] are field/value pairs; returns 1 if the call had ended.
WRITE_LIVE_LUA = INDEX_LIVE_LUA + """
local function write_live(key, ttl, first)
  local ended = redis.call('HGET', key, 'state') == 'ended'
  local values = {}
  for i = first, #ARGV - 1, 2 do
    if not (ended and ARGV[i] == 'state') then
      values[#values + 1] = ARGV[i]
      values[#values + 1] = ARGV[i + 1]
    end
  end
  if #values > 0 then
    redis.call('HSET', key, unpack(values))
    redis.call('EXPIRE', key, ttl)
    index_live(key, ttl)
  end
  if ended then return 1 end
  return 0
end
"""

# KEYS: live hash. ARGV: live TTL, the states the call must be in for anything to be written
# (comma-separated; empty: any), then field/value pairs. Returns 1, having written nothing, if
# the call is in none of them; else as write_live.
_SET_LIVE = WRITE_LIVE_LUA + """
if ARGV[2] ~= '' then
  local state = redis.call('HGET', KEYS[1], 'state') or ''
  if not string.find(',' .. ARGV[2] .. ',', ',' .. state .. ',', 1, true) then return 1 end
end
return write_live(KEYS[1], ARGV[1], 3)
"""

# The hash's field names where they differ from LiveCall's attributes.
_FIELD_NAMES = {"number": "from"}


def live_key(call_sid: str) -> str:
    """The Redis key of a call's live hash."""
    return LIVE_KEY.format(sid=call_sid)


@dataclass(slots=True)  # not frozen: the incoming call builds one per request, and that is dearer
class LiveCall:
    """A call in progress as Redis holds it; None is a field not written (or not known)."""

    state: CallState | None = None
    outcome: str | None = None
    number: str | None = None  # the caller's number; "from" in the hash
    withheld: bool | None = None
    lookup_failed: bool | None = None
    entry_id: int | None = None
    started: str | None = None
    fallback_staff_id: int | None = None
    staff_id: int | None = None
    ringing_staff_id: int | None = None
    ringing_leg_sid: str | None = None
    conference_sid: str | None = None
    warned: bool | None = None
    warnings: int | None = None
    ended_by_agent: bool | None = None
    end_reason: str | None = None
    warning_state: str | None = None  # a callflow.announcement.WarningState
    warning_at: str | None = None  # when the last warning was given (ISO 8601)

    @property
    def waiting(self) -> bool:
        """True while the caller waits for a person (nobody has answered, nor has it ended)."""
        return self.state is not None and self.state.waiting

    @property
    def restricted(self) -> bool:
        """True when the caller has an entry on the register."""
        return self.entry_id is not None

    def encode(self) -> dict[str, str]:
        """The hash fields this value sets (None fields are left out)."""
        # One C call reads every field: the incoming call encodes one of these per request.
        return {field: value if value.__class__ is str else _text(value)
                for field, value in zip(_HASH_FIELDS, _ALL_VALUES(self), strict=True)
                if value is not None}

    @classmethod
    def decode(cls, raw: Mapping) -> LiveCall:
        """A live call from its hash (bytes or text); an empty or unreadable field is unknown."""
        text = {_str(k): _str(v) for k, v in raw.items()}
        return cls(**{name: parse(value) for name, field, parse in _FIELDS
                      if (value := text.get(field))})


def _text(value: object) -> str:
    if value is True or value is False:
        return "1" if value else "0"
    return str(value)


def _str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _state(value: str) -> CallState | None:
    return CallState(value) if value in CallState._value2member_map_ else None


def _flag(value: str) -> bool:
    return value == "1"


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _as_is(value: str) -> str:
    return value


# (attribute, hash field, parser) for each of LiveCall's fields; the annotation says which parser.
_PARSERS = {"CallState | None": _state, "bool | None": _flag, "int | None": _number,
            "str | None": _as_is}
_FIELDS = tuple((f.name, _FIELD_NAMES.get(f.name, f.name), _PARSERS[f.type])
                for f in fields(LiveCall))
_HASH_FIELDS = tuple(field for _name, field, _parse in _FIELDS)
_ALL_VALUES = attrgetter(*(name for name, _field, _parse in _FIELDS))


def read_live(client: redis.Redis, call_sid: str) -> LiveCall:
    """The live state of a call (all unknown when unknown or finished long ago)."""
    return LiveCall.decode(client.hgetall(live_key(call_sid)))


def update_live(client: redis.Redis, call_sid: str, changes: LiveCall,
                while_in: Collection[CallState] = ()) -> bool:
    """Write the fields changes sets, if the call is in one of the states while_in (when given).

    False when the call has ended (its state is left as it is) or is not in those states
    (nothing is written).
    """
    return set_live(client, call_sid, changes.encode(), while_in)


def live_call(client: redis.Redis, call_sid: str) -> dict[str, str]:
    """The live hash of a call as text (empty when unknown or finished long ago)."""
    return {_str(k): _str(v) for k, v in client.hgetall(live_key(call_sid)).items()}


def set_live(client: redis.Redis, call_sid: str, values: Mapping[str, str],
             while_in: Collection[str] = ()) -> bool:
    """update_live for raw hash fields (the console's own fields; tests)."""
    refused = client.eval(_SET_LIVE, 1, live_key(call_sid), LIVE_TTL_SECONDS,
                          ",".join(sorted(while_in)),
                          *(item for pair in values.items() for item in pair))
    return not refused


def live_call_sids(client: redis.Redis) -> list[str]:
    """The CallSid of every call in progress: live state not ended and not expired.

    Read from the index (no scan of Redis's keys); members whose hash has expired are trimmed
    first.
    """
    pipe = client.pipeline(transaction=True)
    pipe.eval(_TRIM_INDEX, 1, LIVE_INDEX_KEY)
    pipe.zrange(LIVE_INDEX_KEY, 0, -1)
    return [sid for sid in map(_str, pipe.execute()[1]) if CALL_SID_PATTERN.match(sid)]


# Redis's clock, as the scores were written by it.
_TRIM_INDEX = """
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(redis.call('TIME')[1]))
"""
