"""The phone simulator's engine: one Twilio emulator per simulated call, kept in Redis.

Any web process can act on any simulated call: the emulator is pickled into Redis (signed with
the secret key), and a Redis lock lets one thread at a time load it, act and store it back.
Every action is queued and run on a background thread, never inside the request that asked for
it: the emulator posts signed webhooks to PUBLIC_BASE_URL over real HTTP, and a request that
waited on its own server would deadlock a server with few workers (gunicorn's two, in `make
run`). The pages read a JSON view of each call that is rewritten after every action.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import pickle
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from twilio.request_validator import RequestValidator

from simulator.emulator import (
    Leg,
    ScriptError,
    SimulatedCall,
    StaffLeg,
    TwilioEmulator,
    new_sid,
)
from store.voice_urls import voice_url
from usecases.bootstrap import Services

log = logging.getLogger(__name__)

PREFIX = "callflow:sim"
STATE_KEY = PREFIX + ":state:{sim}"
VIEW_KEY = PREFIX + ":view:{sim}"
INBOX_KEY = PREFIX + ":inbox:{sim}"
LOCK_KEY = PREFIX + ":lock:{sim}"
REST_KEY = PREFIX + ":rest:{sim}"
INDEX_KEY = PREFIX + ":index"  # hash: any CallSid or ConferenceSid -> simulated call id
LEGS_KEY = PREFIX + ":legs"  # hash: staff leg CallSid -> JSON of who it rings and its status
DUE_KEY = PREFIX + ":due"  # sorted set: simulated call id -> when its next timer fires
UNMATCHED_KEY = PREFIX + ":rest:unmatched"
TTL_SECONDS = 6 * 3600
LOCK_SECONDS = 120
REST_LOG_LENGTH = 100
GATHER_TIMEOUT_DEFAULT = 5
HTTP_TIMEOUT = (5, 20)
WITHHELD = "+266696687"  # how Twilio presents a withheld number ("anonymous" on a keypad)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

ACTIONS = frozenset({"place", "press", "silence", "message", "dial", "hangup", "rest", "leg",
                     "tick"})
LEG_ACTS = frozenset({"answer", "decline", "hangup"})


class StateTampered(RuntimeError):
    """A stored simulator state whose signature does not match: it is not loaded."""


@dataclass
class SimState:
    """One simulated call: its emulator and what the simulator remembers beside it."""

    sim: str
    emulator: TwilioEmulator
    call_sid: str = ""
    from_number: str = ""
    created: float = field(default_factory=time.time)
    notes: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wait_key: str = ""
    wait_since: float = 0.0
    ring_started: dict[str, float] = field(default_factory=dict)

    @property
    def call(self) -> SimulatedCall | None:
        """The caller's leg, once Twilio has placed it."""
        return self.emulator.calls.get(self.call_sid)


# -- transport: real, signed HTTP to the app's public URL ---------------------------------------


class HttpPost:
    """The emulator's transport: a real HTTP POST (signed by the emulator) to PUBLIC_BASE_URL."""

    def __init__(self) -> None:
        """One connection pool per process."""
        self.session = requests.Session()

    def __call__(self, url: str, params: dict[str, str],
                 headers: dict[str, str]) -> tuple[int, str, str]:
        """Post the form and answer (status, content type, body)."""
        host = urlsplit(url).hostname or ""
        # A proxy from the environment must not see (or break) loopback requests.
        proxies = {"http": "", "https": ""} if host in LOOPBACK else None
        response = self.session.post(url, data=params, headers=headers, timeout=HTTP_TIMEOUT,
                                     allow_redirects=False, proxies=proxies)
        return response.status_code, response.headers.get("Content-Type", ""), response.text


_transport = HttpPost()


# -- storing an emulator: pickled, with its process-bound parts left out and signed ------------


class _Pickler(pickle.Pickler):
    def __init__(self, buffer: io.BytesIO, emulator: TwilioEmulator):
        super().__init__(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        # The lock, transport, clock and validator belong to this process, not to the call.
        self._bound = {id(emulator._lock): "lock", id(emulator._post): "post",
                       id(emulator._validator): "validator", id(emulator.clock): "clock"}

    def persistent_id(self, obj: object) -> str | None:
        return self._bound.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, buffer: io.BytesIO, auth_token: str):
        super().__init__(buffer)
        self._bound = {"lock": threading.RLock(), "post": _transport,
                       "validator": RequestValidator(auth_token), "clock": time.time}

    def persistent_load(self, pid: str) -> object:
        return self._bound[pid]


def _signature(secret: str, blob: bytes) -> bytes:
    return hmac.new(secret.encode(), blob, hashlib.sha256).digest()


def dump_state(state: SimState, secret: str) -> bytes:
    """The state as signed bytes for Redis."""
    buffer = io.BytesIO()
    _Pickler(buffer, state.emulator).dump(state)
    blob = buffer.getvalue()
    return _signature(secret, blob) + blob


def load_state(raw: bytes, secret: str, auth_token: str) -> SimState:
    """A state stored by dump_state; StateTampered if anyone else wrote it."""
    mac, blob = raw[:32], raw[32:]
    # Only states this service signed are unpickled: pickle runs code from what it loads.
    if not hmac.compare_digest(mac, _signature(secret, blob)):
        raise StateTampered("simulator state signature does not match")
    return _Unpickler(io.BytesIO(blob), auth_token).load()


# -- the engine ------------------------------------------------------------------------------


def new_sim_id() -> str:
    """An id for a simulated call, known before Twilio has given it a CallSid."""
    return "SM" + secrets.token_hex(12)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class Simulator:
    """Queues actions on simulated calls and runs them, one thread per call at a time."""

    def __init__(self, services: Services, *, run_in_thread: bool = True,
                 clock: Callable[[], float] = time.time):
        """`run_in_thread=False` runs actions in the caller's thread; `clock` drives timers."""
        self.services = services
        self.settings = services.settings
        self.redis: redis.Redis = services.worker_redis
        self.run_in_thread = run_in_thread
        self.clock = clock

    # -- the queue -------------------------------------------------------------------------

    def submit(self, sim: str, action: Mapping[str, Any]) -> None:
        """Queue an action on a simulated call and make sure someone runs it."""
        if action.get("do") not in ACTIONS:
            raise ValueError(f"unknown simulator action {action.get('do')!r}")
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(INBOX_KEY.format(sim=sim), json.dumps(dict(action)))
        pipe.expire(INBOX_KEY.format(sim=sim), TTL_SECONDS)
        pipe.execute()
        if self.run_in_thread:
            threading.Thread(target=self.drain, args=(sim,), name=f"simulator-{sim}",
                             daemon=True).start()
        else:
            self.drain(sim)

    def drain(self, sim: str) -> None:
        """Run queued actions until none is left; another thread holding the call's lock will."""
        inbox = INBOX_KEY.format(sim=sim)
        while True:
            lock = self.redis.lock(LOCK_KEY.format(sim=sim), timeout=LOCK_SECONDS,
                                   blocking=False, thread_local=False)
            if not lock.acquire():
                return  # the holder checks the inbox again after releasing
            try:
                self._run_inbox(sim, inbox)
            except Exception:
                log.exception("simulator: call %s failed", sim)
            finally:
                lock.release()
            if not self.redis.llen(inbox):
                return

    def _run_inbox(self, sim: str, inbox: str) -> None:
        state = self._load(sim)
        while True:
            raw = self.redis.lpop(inbox)
            if raw is None:
                break
            action = json.loads(raw)
            if state is None and action.get("do") != "place":
                continue  # the call is gone (expired) or never began
            try:
                state = self._apply(sim, state, action)
            except ScriptError as refused:
                if state is not None:
                    state.errors.append(str(refused))
            except Exception as error:
                log.exception("simulator: %s on %s failed", action.get("do"), sim)
                if state is not None:
                    state.errors.append(f"{action.get('do')} failed: {error}")
            if state is not None:
                self._timers(state)
                self._store(state)

    # -- acting --------------------------------------------------------------------------

    def _apply(self, sim: str, state: SimState | None, action: dict[str, Any]) -> SimState:
        do = action["do"]
        if do == "place":
            if state is not None:
                return state
            return self._place(sim, action.get("from", ""))
        assert state is not None
        call = state.call
        if do == "rest":
            self._rest(state, action)
        elif do == "leg":
            self._leg(state, action.get("leg", ""), action.get("act", ""))
        elif do == "tick":
            self._tick(state)
        elif call is None:
            raise ScriptError("the call has not started")
        elif do == "press":
            call.press(str(action.get("digits", "")))
        elif do == "silence":
            call.silence()
        elif do == "message":
            call.leave_message(int(action.get("seconds", 10)))
        elif do == "dial":
            call.finish_dial(str(action.get("outcome", "answered")))
        elif do == "hangup":
            if not call.over:
                state.notes.append((len(call.transcript), "You hung up."))
                call.hang_up()
        return state

    def _place(self, sim: str, from_number: str) -> SimState:
        s = self.settings
        emulator = TwilioEmulator(
            s.public_base_url, s.twilio_auth_token, _transport,
            account_sid=s.twilio_account_sid, phone_number=s.twilio_phone_number,
            # Twilio's "primary handler fails" URL, as the voice webhook's docstring asks.
            fallback_url=voice_url(s.public_base_url, "/fallback"), clock=time.time,
        )
        state = SimState(sim, emulator, from_number=from_number)
        # Known before the first webhook is answered: the service may dial staff for this call
        # (a REST request naming it) while the emulator is still running its TwiML.
        sid = new_sid("CA")
        self.claim(sid, sim)
        call = emulator.place_call(from_number, sid=sid)
        state.call_sid = call.sid
        return state

    def _leg(self, state: SimState, leg_sid: str, act: str) -> None:
        leg = self._staff_leg(state, leg_sid)
        if leg is None:
            raise ScriptError(f"no staff leg {leg_sid}")
        if act == "answer":
            leg.answer()
        elif act == "machine":  # its voicemail picks up (issue 14)
            leg.answer_by_machine()
        elif act == "decline":
            leg.decline("busy")
        elif act == "hangup":
            if not leg.over:
                leg.hang_up()
        else:
            raise ScriptError(f"unknown act {act!r} on a staff leg")

    @staticmethod
    def _staff_leg(state: SimState, sid: str) -> StaffLeg | None:
        return next((leg for leg in state.emulator.staff_legs if leg.sid == sid), None)

    def _rest(self, state: SimState, action: dict[str, Any]) -> None:
        before = {leg.sid for leg in state.emulator.staff_legs}
        outcome = state.emulator.apply_rest(action["method"], action["path"], action["params"])
        wanted = action.get("sid")
        created = [leg for leg in state.emulator.staff_legs if leg.sid not in before]
        if wanted and created:
            # The REST answer already named this call's sid (Twilio answers at once; the
            # emulator runs later), so the new leg takes it. Only its "ringing" callback,
            # which callflow ignores, went out under the emulator's own sid.
            created[0].sid = wanted
        self._log_rest(state.sim, action, outcome)

    def _tick(self, state: SimState) -> None:
        """Twilio's timers: an unanswered <Gather> times out, an unanswered staff leg stops."""
        now = self.clock()
        call = state.call
        gather_due = self._gather_due(state)
        if call is not None and gather_due is not None and now >= gather_due:
            call.silence()
        for leg in state.emulator.staff_legs:
            started = state.ring_started.get(leg.sid)
            if leg.ringing and started is not None and now >= started + leg.timeout:
                leg.decline("no-answer")

    # -- timers ----------------------------------------------------------------------------

    @staticmethod
    def _gather_timeout(call: Leg) -> int:
        document = call.twiml
        gather = document.find("Gather") if document is not None else None
        raw = gather.get("timeout") if gather is not None else None
        return int(raw) if raw and raw.isdigit() else GATHER_TIMEOUT_DEFAULT

    def _gather_due(self, state: SimState) -> float | None:
        call = state.call
        if call is None or call.waiting_for != "gather":
            return None
        return state.wait_since + self._gather_timeout(call)

    def _timers(self, state: SimState) -> None:
        now = self.clock()
        call = state.call
        if call is not None:
            key = f"{call.waiting_for}:{len(call.documents)}:{len(call.transcript)}"
            if key != state.wait_key:
                state.wait_key, state.wait_since = key, now
        for leg in state.emulator.staff_legs:
            if leg.ringing:
                state.ring_started.setdefault(leg.sid, now)
        dues = [due for due in [self._gather_due(state)] if due is not None]
        dues += [state.ring_started[leg.sid] + leg.timeout
                 for leg in state.emulator.staff_legs
                 if leg.ringing and leg.sid in state.ring_started]
        if dues:
            self.redis.zadd(DUE_KEY, {state.sim: min(dues)})
        else:
            self.redis.zrem(DUE_KEY, state.sim)

    def run_due_timers(self) -> None:
        """Tick every simulated call whose timer has fired (called from the pages' polls)."""
        now = self.clock()
        for sim in self.redis.zrangebyscore(DUE_KEY, "-inf", now):
            name = _text(sim)
            if self.redis.zrem(DUE_KEY, name):  # whoever removes it runs the tick
                self.submit(name, {"do": "tick"})

    # -- storage ---------------------------------------------------------------------------

    def _load(self, sim: str) -> SimState | None:
        raw = self.redis.get(STATE_KEY.format(sim=sim))
        if raw is None:
            return None
        try:
            return load_state(raw, self.settings.secret_key, self.settings.twilio_auth_token)
        except StateTampered:
            log.error("simulator: state of %s is not signed by this service; ignored", sim)
            return None

    def _store(self, state: SimState) -> None:
        sim = state.sim
        view = self._view(state)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(STATE_KEY.format(sim=sim),
                 dump_state(state, self.settings.secret_key), ex=TTL_SECONDS)
        pipe.set(VIEW_KEY.format(sim=sim), json.dumps(view), ex=TTL_SECONDS)
        sids = {leg.sid for leg in state.emulator.staff_legs} | set(state.emulator.calls)
        sids |= {conference.sid for conference in state.emulator.conferences.values()}
        if sids:
            pipe.hset(INDEX_KEY, mapping=dict.fromkeys(sids, sim))
        for leg in state.emulator.staff_legs:
            if leg.over:
                pipe.hdel(LEGS_KEY, leg.sid)
            else:
                pipe.hset(LEGS_KEY, leg.sid, json.dumps({
                    "sid": leg.sid, "sim": sim, "to": leg.to_number, "status": leg.status,
                    "for_call": leg.for_call or "", "staff_id": leg.staff_id,
                }))
        pipe.expire(INDEX_KEY, TTL_SECONDS)
        pipe.expire(LEGS_KEY, TTL_SECONDS)
        pipe.execute()

    def _view(self, state: SimState) -> dict[str, Any]:
        call = state.call
        conference = None
        if call is not None and call.conference:
            conference = state.emulator.conferences.get(call.conference)
        return {
            "sim": state.sim,
            "call_sid": state.call_sid,
            "from": state.from_number,
            "status": call.status if call is not None else "placing",
            "over": bool(call is not None and call.over),
            "waiting_for": call.waiting_for if call is not None else None,
            "on_hold": bool(conference is not None and not conference.started),
            "connected": bool(conference is not None and conference.started),
            "gather_due": self._gather_due(state),
            "transcript": transcript_view(call.transcript if call else [], state.notes),
            "legs": [{"sid": leg.sid, "to": leg.to_number, "status": leg.status}
                     for leg in state.emulator.staff_legs],
            "calls": {sid: leg.status for sid, leg in state.emulator.calls.items()}
            | {leg.sid: leg.status for leg in state.emulator.staff_legs},
            "conferences": {c.sid: sorted(c.participants) for c in
                            state.emulator.conferences.values()},
            "errors": state.errors[-5:],
            "problems": state.emulator.problems[-10:],
        }

    def view(self, sim: str) -> dict[str, Any] | None:
        """What the caller's page shows, or None for an unknown call."""
        raw = self.redis.get(VIEW_KEY.format(sim=sim))
        if raw is None:
            return None
        view = json.loads(raw)
        rest = self.redis.lrange(REST_KEY.format(sim=sim), 0, -1)
        view["rest"] = [json.loads(entry) for entry in rest]
        return view

    def sim_for(self, sid: str) -> str | None:
        """The simulated call a CallSid or ConferenceSid belongs to."""
        found = self.redis.hget(INDEX_KEY, sid)
        return _text(found) or None

    def claim(self, sid: str, sim: str) -> None:
        """Note that a sid belongs to a simulated call before the emulator has run."""
        self.redis.hset(INDEX_KEY, sid, sim)

    def legs_for(self, dial_target: str) -> list[dict[str, Any]]:
        """Staff legs ringing or connected to one dial target (client:alex, a phone)."""
        legs = [json.loads(raw) for raw in self.redis.hvals(LEGS_KEY)]
        return [leg for leg in legs if leg["to"] == dial_target]

    def leg(self, sid: str) -> dict[str, Any] | None:
        """One staff leg as the console sees it."""
        raw = self.redis.hget(LEGS_KEY, sid)
        return json.loads(raw) if raw else None

    def _log_rest(self, sim: str, action: Mapping[str, Any], outcome: str) -> None:
        entry = json.dumps({"at": time.time(), "method": action["method"],
                            "path": action["path"], "outcome": outcome})
        key = REST_KEY.format(sim=sim)
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(key, entry)
        pipe.ltrim(key, -REST_LOG_LENGTH, -1)
        pipe.expire(key, TTL_SECONDS)
        pipe.execute()

    def log_unmatched(self, method: str, path: str, reason: str) -> None:
        """A REST request for no simulated call: kept for the simulator page."""
        entry = json.dumps({"at": time.time(), "method": method, "path": path,
                            "outcome": reason})
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(UNMATCHED_KEY, entry)
        pipe.ltrim(UNMATCHED_KEY, -REST_LOG_LENGTH, -1)
        pipe.execute()


# -- what the caller heard, for people ------------------------------------------------------


def _entry(line: str) -> dict[str, str]:
    kind, _, text = line.partition(": ")
    if kind == "say":
        return {"kind": "say", "text": text}
    if kind == "announcement":
        return {"kind": "say", "text": text, "note": "announcement, played to you alone"}
    if kind == "play":
        return {"kind": "system", "text": "Music plays." if "://" in text else f"Plays {text}."}
    if kind == "pause":
        return {"kind": "system", "text": f"A pause ({text})."}
    if kind == "pressed":
        return {"kind": "you", "text": f"You pressed {text}."}
    if line == "silence":
        return {"kind": "you", "text": "You said nothing."}
    if kind == "message":
        return {"kind": "you", "text": f"You left a message ({text})."}
    if line == "beep":
        return {"kind": "system", "text": "Beep."}
    if kind == "conference":
        if text.endswith("(waiting)"):
            return {"kind": "system", "text": "On hold, waiting for a member of staff."}
        return {"kind": "system", "text": "In the call."}
    if kind == "connected":
        return {"kind": "system", "text": "A member of staff joined the call."}
    if kind == "conference ended":
        return {"kind": "system", "text": "The member of staff left the call."}
    if kind == "dial":
        return {"kind": "system", "text": f"Ringing {text}."}
    if kind == "dial ended":
        return {"kind": "system", "text": f"That call ended ({text})."}
    if kind == "redirected":
        return {"kind": "system", "text": "Twilio moved the call on (a redirect)."}
    if line == "hangup":
        return {"kind": "system", "text": "The line hung up."}
    if line == "reject":
        return {"kind": "system", "text": "The call was rejected."}
    return {"kind": "system", "text": line}


def transcript_view(lines: list[str], notes: list[tuple[int, str]]) -> list[dict[str, str]]:
    """The transcript as entries a person reads, with the simulator's own notes in place."""
    by_position: dict[int, list[str]] = {}
    for position, text in notes:
        by_position.setdefault(position, []).append(text)
    entries: list[dict[str, str]] = []
    for index, line in enumerate(lines):
        entries += [{"kind": "you", "text": text} for text in by_position.pop(index, [])]
        entries.append(_entry(line))
    for texts in by_position.values():
        entries += [{"kind": "you", "text": text} for text in texts]
    return entries
