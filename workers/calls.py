"""Jobs that move a live call along: dial staff into the caller's conference, or take a message.

Each job takes a CallSid and plain values, checks the call's live state first, and does one
REST call, so a retry or a duplicate does no harm.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import select

from callflow.decision import Event, Leg, after_unanswered
from config import clock
from config.logging_setup import with_call_sid
from store import twilio_rest
from store.agent_pool import AgentPool, Availability, Claim
from store.call_events import Batch, live_call, set_live
from store.models import Staff
from workers.context import services
from workers.pump import job_id_for

log = logging.getLogger(__name__)

NO_AGENT_RETRY_SECONDS = 5
WAITING_STATES = {"waiting", "ringing"}


def _url(path: str, **query: object) -> str:
    base = services().settings.public_base_url
    return f"{base}/twilio/voice{path}" + (f"?{urlencode(query)}" if query else "")


def _record(call_sid: str, kind: str, key: str, **detail: object) -> None:
    services().event_sink.emit(Batch(call_sid, (Event(kind, key, clock.now_utc(), detail),)))


def _pool() -> AgentPool:
    return AgentPool(services().worker_redis)


def _client():
    return services().twilio


@with_call_sid
def dispatch_to_pool(call_sid: str, attempt: int) -> str:
    """Ring the longest-idle available agent for a waiting caller, or try again shortly."""
    live = live_call(services().worker_redis, call_sid)
    if live.get("state") not in WAITING_STATES:
        return "caller no longer waiting"
    staff_id = _pool().claim_longest_idle(call_sid)
    if staff_id is not None and not _still_waiting(call_sid):
        # The caller hung up while the agent was being claimed: give the agent back.
        _pool().release(staff_id, call_sid)
        return "caller no longer waiting"
    if staff_id is None:
        services().queue.enqueue_in(
            timedelta(seconds=NO_AGENT_RETRY_SECONDS), dispatch_to_pool, call_sid, attempt + 1,
            job_id=job_id_for(call_sid, f"dispatch:{attempt + 1}"),
        )
        return "no agent available; trying again"
    return _dial(call_sid, staff_id, Leg.POOL, attempt)


@with_call_sid
def dial_staff(call_sid: str, staff_id: int, leg: str) -> str:
    """Ring a named member of staff (a designated contact or the fallback) for a caller."""
    live = live_call(services().worker_redis, call_sid)
    if live.get("state") not in WAITING_STATES:
        return "caller no longer waiting"
    claim = _pool().claim_named(staff_id, call_sid)
    if claim is Claim.BUSY:
        # On another call: as good as busy, so the fallback takes over (policy 4.1).
        _record(call_sid, "no_answer", f"agent:{staff_id}:0:busy", staff_id=staff_id,
                status="busy", leg=leg)
        return _unanswered(call_sid, staff_id, Leg(leg), 0, "busy")
    if claim is Claim.AWAY:
        # Away (or signed out) means away: not rung, and left away; the fallback takes over.
        log.info("call %s: staff %s is away, so the call goes on to the fallback", call_sid,
                 staff_id)
        _record(call_sid, f"{leg}_contact_away", f"away:{staff_id}", staff_id=staff_id, leg=leg)
        return _unanswered(call_sid, staff_id, Leg(leg), 0, "away")
    if not _still_waiting(call_sid):
        _pool().release(staff_id, call_sid)
        return "caller no longer waiting"
    return _dial(call_sid, staff_id, Leg(leg), 0)


def _still_waiting(call_sid: str) -> bool:
    return live_call(services().worker_redis, call_sid).get("state") in WAITING_STATES


def _dial(call_sid: str, staff_id: int, leg: Leg, attempt: int) -> str:
    s = services()
    with s.sessions() as session:
        member = session.scalar(select(Staff).where(Staff.id == staff_id, Staff.active))
        target = member.dial_target if member else None
    fallback = services().worker_redis.hget(f"callflow:live:{call_sid}", "fallback_staff_id")
    query = {"call": call_sid, "staff": staff_id, "leg": leg.value, "attempt": attempt,
             "fallback": (fallback or b"").decode()}
    if target is None:
        log.warning("staff %s cannot be dialled (no client identity or phone)", staff_id)
        return _unanswered(call_sid, staff_id, leg, attempt, "failed")
    try:
        leg_sid = twilio_rest.dial_into_conference(
            _client(), to=target, from_=s.settings.twilio_phone_number,
            join_url=_url("/agent/join", **query), status_callback=_url("/agent/status", **query),
            timeout_seconds=s.settings.agent_ring_seconds,
        )
    except twilio_rest.TwilioRefused as refused:
        log.error("Twilio refused to dial staff %s: %s", staff_id, refused)
        _record(call_sid, "dial_refused", f"dial-refused:{staff_id}:{attempt}",
                staff_id=staff_id, status=refused.status, message=str(refused))
        return _unanswered(call_sid, staff_id, leg, attempt, "failed")
    _record(call_sid, "dialled", f"dialled:{staff_id}:{attempt}", staff_id=staff_id,
            leg=leg.value)
    if not set_live(s.worker_redis, call_sid, {"state": "ringing",
                                               "ringing_staff_id": str(staff_id),
                                               "ringing_leg_sid": leg_sid},
                    while_in=WAITING_STATES):
        # The caller hung up (or moved on) while this phone was being dialled: stop it.
        _cancel_leg(leg_sid)
        _pool().release(staff_id, call_sid)
        return f"caller no longer waiting; staff {staff_id}'s phone stopped"
    return f"dialled staff {staff_id}"


def _unanswered(call_sid: str, staff_id: int, leg: Leg, attempt: int, status: str) -> str:
    """Move on as if the leg went unanswered (the same path as Twilio's status callback)."""
    _pool().release(staff_id, call_sid)
    raw = services().worker_redis.hget(f"callflow:live:{call_sid}", "fallback_staff_id")
    fallback = int(raw) if raw and raw.isdigit() else None
    step = after_unanswered(leg, fallback)
    if leg is Leg.DESIGNATED and step.action != "pool":
        passed_on(call_sid, staff_id, "fallback" if step.action == "dial" else "voicemail")
    if step.action == "pool":
        return agent_missed(call_sid, staff_id, attempt)
    if step.action == "dial" and step.staff_id is not None:
        return dial_staff(call_sid, step.staff_id, Leg.FALLBACK.value)
    return send_to_voicemail(call_sid)


@with_call_sid
def agent_missed(call_sid: str, staff_id: int, attempt: int) -> str:
    """An agent did not answer: mark them away and ring the next one."""
    pool = _pool()
    if pool.current_call(staff_id) == call_sid:
        pool.release(staff_id, call_sid)
        pool.set_availability(staff_id, Availability.AWAY)
    return dispatch_to_pool(call_sid, attempt + 1)


@with_call_sid
def passed_on(call_sid: str, staff_id: int, went_to: str) -> str:
    """A designated contact's call went on to the fallback or voicemail: tell their console."""
    _pool().note_passed_on(staff_id, call_sid, went_to)
    return f"passed on to {went_to}"


@with_call_sid
def staff_free(call_sid: str, staff_id: int) -> str:
    """A member of staff's leg ended: they are available again (unless they chose away)."""
    return "freed" if _pool().release(staff_id, call_sid) else "not on this call"


@with_call_sid
def send_to_voicemail(call_sid: str) -> str:
    """Move a waiting caller to voicemail (policy 4.1: a form of contact is kept)."""
    client = services().worker_redis
    if live_call(client, call_sid).get("state") not in WAITING_STATES:
        return "caller no longer waiting"
    twilio_rest.redirect_call(_client(), call_sid, _url("/voicemail", call=call_sid))
    set_live(client, call_sid, {"state": "voicemail"})
    _stop_ringing(call_sid)
    return "sent to voicemail"


def _stop_ringing(call_sid: str) -> None:
    """Cancel a staff phone still ringing for a caller who has moved on, and free its owner."""
    live = live_call(services().worker_redis, call_sid)
    leg_sid, staff_id = live.get("ringing_leg_sid"), live.get("ringing_staff_id", "")
    if not leg_sid or live.get("staff_id"):
        return
    _cancel_leg(leg_sid)
    if staff_id.isdigit():
        _pool().release(int(staff_id), call_sid)


def _cancel_leg(leg_sid: str) -> None:
    try:
        twilio_rest.cancel_call(_client(), leg_sid)
    except twilio_rest.TwilioRefused as refused:
        log.info("staff leg already over: %s", refused)  # it was answered or ended meanwhile


@with_call_sid
def offer_voicemail_if_waiting(call_sid: str) -> str:
    """After the maximum wait, a caller nobody has answered is offered voicemail."""
    return send_to_voicemail(call_sid)


@with_call_sid
def call_finished(call_sid: str) -> str:
    """The caller hung up: stop any phone still ringing for them, free whoever was on the call."""
    _stop_ringing(call_sid)
    live = live_call(services().worker_redis, call_sid)
    freed = []
    for field in ("staff_id", "ringing_staff_id"):
        if live.get(field, "").isdigit():
            if _pool().release(int(live[field]), call_sid):
                freed.append(live[field])
    return f"freed {', '.join(freed) or 'nobody'}"
