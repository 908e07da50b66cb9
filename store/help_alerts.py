"""Live supervision in Redis: help alerts and supervisors on calls.

One hash per call asking for help (`callflow:help:{sid}`: state, staff_id, raised_at, number,
answered_by, answered_at) and a sorted set of the live calls that asked for help; one hash
per supervised call (`callflow:supervisors:{sid}`: a field per supervisor, "leg_sid mode", and
a count of switches).
Everything expires with the live call.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from callflow.supervision import HelpState, SupervisionMode
from store.live_call import LIVE_TTL_SECONDS

HELP_KEY = "callflow:help:{sid}"
OPEN_KEY = "callflow:help:open"  # sid -> when help was asked (epoch seconds), till the call ends
SUPERVISORS_KEY = "callflow:supervisors:{sid}"
CHANGES_FIELD = "changes"  # beside the supervisors' fields (which are staff ids)

# KEYS: the call's help hash, the open set. ARGV: sid, staff id, raised at (ISO), epoch, ttl.
# A second click while the alert is open is the same alert (0); else a new one (its number).
_RAISE = """
if redis.call('HGET', KEYS[1], 'state') == 'raised' then return 0 end
local number = redis.call('HINCRBY', KEYS[1], 'number', 1)
redis.call('HSET', KEYS[1], 'state', 'raised', 'staff_id', ARGV[2], 'raised_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'answered_by', 'answered_at')
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return number
"""

# KEYS: the call's help hash, the open set. ARGV: sid, staff id, answered at (ISO).
# The first supervisor to answer is the one logged: {1, number} for them, {0, who} for later ones.
_ANSWER = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, ''} end
if state ~= 'raised' then return {0, redis.call('HGET', KEYS[1], 'answered_by') or ''} end
redis.call('HSET', KEYS[1], 'state', 'answered', 'answered_by', ARGV[2], 'answered_at', ARGV[3])
return {1, redis.call('HGET', KEYS[1], 'number')}
"""


@dataclass(frozen=True)
class HelpAlert:
    """One call's request for help, as Redis holds it."""

    call_sid: str
    state: HelpState
    staff_id: int
    raised_at: str
    number: int
    answered_by: int | None = None
    answered_at: str | None = None


@dataclass(frozen=True)
class Answered:
    """What answering an alert did: `first` when this supervisor is the one who answered it."""

    first: bool
    number: int
    answered_by: int | None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class HelpAlerts:
    """Help requests: raised by the agent on the call, answered by the first supervisor."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    def raise_alert(self, call_sid: str, staff_id: int, raised_at: str, epoch: float) -> int:
        """Open an alert for the call; its number, or 0 when one is already open."""
        return int(self.redis.eval(_RAISE, 2, HELP_KEY.format(sid=call_sid), OPEN_KEY, call_sid,
                                   staff_id, raised_at, epoch, LIVE_TTL_SECONDS))

    def answer(self, call_sid: str, staff_id: int, answered_at: str) -> Answered | None:
        """Answer the call's alert; None when there is none."""
        done, value = self.redis.eval(_ANSWER, 2, HELP_KEY.format(sid=call_sid), OPEN_KEY,
                                      call_sid, staff_id, answered_at)
        if int(done) < 0:
            return None
        alert = self.get(call_sid)
        number = alert.number if alert else 0
        if int(done) == 1:
            return Answered(True, number, staff_id)
        who = _text(value)
        return Answered(False, number, int(who) if who.isdigit() else None)

    def get(self, call_sid: str) -> HelpAlert | None:
        """The call's alert (open or answered), if any."""
        raw = {_text(k): _text(v) for k, v in
               self.redis.hgetall(HELP_KEY.format(sid=call_sid)).items()}
        if raw.get("state") not in HelpState._value2member_map_:
            return None
        answered = raw.get("answered_by", "")
        return HelpAlert(call_sid, HelpState(raw["state"]), int(raw.get("staff_id") or 0),
                         raw.get("raised_at", ""), int(raw.get("number") or 0),
                         int(answered) if answered.isdigit() else None,
                         raw.get("answered_at") or None)

    def alerts(self) -> list[HelpAlert]:
        """Every live call's alert, answered or not, oldest first."""
        found = []
        for sid in self.redis.zrange(OPEN_KEY, 0, -1):
            alert = self.get(_text(sid))
            if alert is not None:
                found.append(alert)
            else:  # expired with its call
                self.redis.zrem(OPEN_KEY, sid)
        return found

    def close(self, call_sid: str) -> None:
        """Stop listing the call's alert (the call has ended)."""
        self.redis.zrem(OPEN_KEY, call_sid)


@dataclass(frozen=True)
class SupervisorLeg:
    """A supervisor on a call: their leg's CallSid and how they are on it."""

    staff_id: int
    leg_sid: str
    mode: SupervisionMode


class Supervisors:
    """Who is supervising each call, and how."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    def joined(self, call_sid: str, leg: SupervisorLeg) -> None:
        """Record a supervisor's leg on the call (or their new mode)."""
        key = SUPERVISORS_KEY.format(sid=call_sid)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, str(leg.staff_id), f"{leg.leg_sid} {leg.mode.value}")
        pipe.expire(key, LIVE_TTL_SECONDS)
        pipe.execute()

    def left(self, call_sid: str, staff_id: int) -> bool:
        """Forget a supervisor's leg on the call; False when they were not on it."""
        return bool(self.redis.hdel(SUPERVISORS_KEY.format(sid=call_sid), str(staff_id)))

    def next_change(self, call_sid: str) -> int:
        """A number for the call's next switch of mode, so that each is logged once."""
        return int(self.redis.hincrby(SUPERVISORS_KEY.format(sid=call_sid), CHANGES_FIELD, 1))

    def on_call(self, call_sid: str) -> list[SupervisorLeg]:
        """Every supervisor on the call."""
        legs = []
        for staff_id, value in self.redis.hgetall(SUPERVISORS_KEY.format(sid=call_sid)).items():
            leg_sid, _, mode = _text(value).partition(" ")
            if mode in SupervisionMode._value2member_map_ and _text(staff_id).isdigit():
                legs.append(SupervisorLeg(int(_text(staff_id)), leg_sid, SupervisionMode(mode)))
        return sorted(legs, key=lambda leg: leg.staff_id)

    def leg_of(self, call_sid: str, staff_id: int) -> SupervisorLeg | None:
        """The supervisor's leg on the call, if they are on it."""
        return next((leg for leg in self.on_call(call_sid) if leg.staff_id == staff_id), None)

