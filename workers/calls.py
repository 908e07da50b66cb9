"""Jobs that move a live call along: dial staff into the caller's conference, or take a message.

Each job takes a CallSid and plain values, checks the call's live state first, and does one
REST call, so a retry or a duplicate does no harm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache

from rq import Retry
from sqlalchemy import select

from callflow import events
from callflow.answering_machine import MACHINE_DETECTION, detects_machines
from callflow.call_state import WAITING_STATES, CallState
from callflow.effects import (
    MAX_WAIT_KEY,
    CallEffect,
    CallerLeft,
    CountCall,
    DialPerson,
    DialPool,
    EndAtTimeLimit,
    FreeStaff,
    Leg,
    NextAgent,
    OfferVoicemail,
    PassedOn,
    WarnOfTimeLimit,
    after_unanswered,
    dispatch_key,
)
from callflow.effects import passed_on as passed_on_note
from callflow.events import Event
from config import clock
from config.logging_setup import call_sid_bound, with_call_sid
from store import twilio_rest
from store.agent_pool import AgentPool, Availability, Claim
from store.call_events import Batch, job_id_for
from store.dead_letters import error_type
from store.live_call import LiveCall, live_key, read_live, update_live
from store.models import Staff
from store.voice_urls import voice_url
from store.waiting_callers import Match, WaitingCallers
from usecases import call_limits
from workers.context import services

log = logging.getLogger(__name__)

# An effect's job is tried three more times, 2, 10 and 30 s apart, before it is failed.
EFFECT_RETRY = Retry(max=3, interval=[2, 10, 30])
EFFECT_RESULT_TTL = 3600
# A job of several calls' effects runs up to this many calls' side by side (the pump puts at
# most this many effects in one job).
EFFECT_THREADS = 10
NO_AGENT_RETRY_SECONDS = 5  # the safety net behind offering waiting callers to freed agents
OFFER_TRIES = 10  # callers gone between the offer (which drops those gone) and the dial


def _url(path: str, **query: object) -> str:
    return voice_url(services().settings.public_base_url, path, **query)


def _record(call_sid: str, event: Event) -> None:
    services().event_sink.emit(Batch(call_sid, (event,)))


def _live(call_sid: str) -> LiveCall:
    return read_live(services().worker_redis, call_sid)


def _pool() -> AgentPool:
    return AgentPool(services().worker_redis)


def _waiting() -> WaitingCallers:
    return WaitingCallers(services().worker_redis)


def _offer_soon(staff_id: int) -> None:
    """The agent is free again: offer them the longest-waiting caller, if anyone waits."""
    _waiting().request_offer(services().queue, staff_id)


def _client():
    return services().twilio


@with_call_sid
def dispatch_to_pool(call_sid: str, attempt: int) -> str:
    """Ring the longest-idle available agent for a waiting caller, or queue them and try again.

    A queued caller is offered to the next agent who becomes available (offer_waiting_caller);
    the retry is the safety net, and stops once an agent has been given them.
    """
    if not _live(call_sid).waiting:
        _waiting().leave(call_sid)
        return "caller no longer waiting"
    found = _waiting().claim_agent(call_sid, attempt, clock.now_utc().timestamp())
    staff_id = found.staff_id
    if found.match is Match.GIVEN:
        return f"caller already given to staff {staff_id}"
    if staff_id is None:  # nobody free: the caller waits in the index
        _retry_dispatch(call_sid, attempt + 1)
        return "no agent available; waiting for one, trying again"
    live = _live(call_sid)
    if not live.waiting:
        # The caller hung up while the agent was being claimed: give the agent back.
        _give_back(staff_id, call_sid)
        return "caller no longer waiting"
    return _dial(call_sid, staff_id, Leg.POOL, attempt, live)


def _retry_dispatch(call_sid: str, attempt: int) -> None:
    services().queue.enqueue_in(
        timedelta(seconds=NO_AGENT_RETRY_SECONDS), dispatch_to_pool, call_sid, attempt,
        job_id=job_id_for(call_sid, dispatch_key(attempt)),
    )


def _give_back(staff_id: int, call_sid: str) -> None:
    """Release an agent claimed for a caller who has gone; someone else may be waiting."""
    if _pool().release(staff_id, call_sid):
        _offer_soon(staff_id)


def offer_waiting_caller(staff_id: int) -> str:
    """An agent became available: ring the longest-waiting caller for them, if one waits."""
    _pool().recovery(staff_id)  # a recovery found over makes them available
    for _ in range(OFFER_TRIES):
        caller = _waiting().offer(staff_id)
        if caller is None:
            return f"no waiting caller for staff {staff_id}, or they are not free"
        with call_sid_bound(caller.call_sid):
            live = _live(caller.call_sid)
            if not live.waiting:
                _pool().release(staff_id, caller.call_sid)  # gone: try the next caller
                continue
            try:
                return _dial(caller.call_sid, staff_id, Leg.POOL, caller.attempt, live)
            except Exception:
                # Not rung: the agent is free again, and the caller's own retries take over.
                _pool().release(staff_id, caller.call_sid)
                _retry_dispatch(caller.call_sid, caller.attempt + 1)
                raise
    return f"staff {staff_id} is free; the callers offered had gone"


@with_call_sid
def dial_staff(call_sid: str, staff_id: int, leg: str) -> str:
    """Ring a named member of staff (a designated contact or the fallback) for a caller."""
    if not _live(call_sid).waiting:
        return "caller no longer waiting"
    dialled_as = Leg(leg)
    claim = _pool().claim_named(staff_id, call_sid)
    now = clock.now_utc()
    if claim is Claim.BUSY:
        # On another call: as good as busy, so the fallback takes over (policy 4.1).
        _record(call_sid, events.no_answer(now, staff_id, 0, "busy", dialled_as.value))
        return _unanswered(call_sid, staff_id, dialled_as, 0)
    if claim is Claim.AWAY:
        # Away (or signed out) means away: not rung, and left away; the fallback takes over.
        log.info("call %s: staff %s is away, so the call goes on to the fallback", call_sid,
                 staff_id)
        _record(call_sid, events.contact_away(now, staff_id, dialled_as))
        return _unanswered(call_sid, staff_id, dialled_as, 0)
    live = _live(call_sid)
    if not live.waiting:
        _pool().release(staff_id, call_sid)
        return "caller no longer waiting"
    return _dial(call_sid, staff_id, dialled_as, 0, live)


def _dial(call_sid: str, staff_id: int, leg: Leg, attempt: int, live: LiveCall) -> str:
    """Ring the member of staff claimed for a caller found waiting (live, just read)."""
    s = services()
    with s.sessions() as session:
        member = session.scalar(select(Staff).where(Staff.id == staff_id, Staff.active))
        target = member.dial_target if member else None
    fallback = live.fallback_staff_id
    query = {"call": call_sid, "staff": staff_id, "leg": leg.value, "attempt": attempt,
             "fallback": "" if fallback is None else fallback}
    if target is None:
        log.warning("staff %s cannot be dialled (no client identity or phone)", staff_id)
        return _unanswered(call_sid, staff_id, leg, attempt)
    try:
        leg_sid = twilio_rest.dial_into_conference(
            _client(), to=target, from_=s.settings.twilio_phone_number,
            join_url=_url("/agent/join", **query), status_callback=_url("/agent/status", **query),
            timeout_seconds=s.settings.agent_ring_seconds,
            # Issue 14: a phone's voicemail must not take the caller (the browser has none).
            machine_detection=MACHINE_DETECTION if detects_machines(target) else None,
        )
    except twilio_rest.TwilioRefused as refused:
        log.error("Twilio refused to dial staff %s: %s", staff_id, refused)
        _record(call_sid, events.dial_refused(clock.now_utc(), staff_id, attempt,
                                              refused.status, str(refused)))
        return _unanswered(call_sid, staff_id, leg, attempt)
    _record(call_sid, events.dialled(clock.now_utc(), staff_id, attempt, leg.value))
    ringing = LiveCall(state=CallState.RINGING, ringing_staff_id=staff_id,
                       ringing_leg_sid=leg_sid)
    if not update_live(s.worker_redis, call_sid, ringing, while_in=WAITING_STATES):
        # The caller hung up (or moved on) while this phone was being dialled: stop it.
        _cancel_leg(leg_sid)
        _give_back(staff_id, call_sid)
        return f"caller no longer waiting; staff {staff_id}'s phone stopped"
    return f"dialled staff {staff_id}"


def _unanswered(call_sid: str, staff_id: int, leg: Leg, attempt: int) -> str:
    """Move on as if the leg went unanswered (the same path as Twilio's status callback)."""
    _pool().release(staff_id, call_sid)
    step = after_unanswered(leg, staff_id, attempt, _live(call_sid).fallback_staff_id)
    note = passed_on_note(leg, staff_id, step)
    if note is not None:
        run_now(call_sid, note)
    return run_now(call_sid, step)


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
    if not _pool().release(staff_id, call_sid):
        return "not on this call"
    _offer_soon(staff_id)
    return "freed"


@with_call_sid
def send_to_voicemail(call_sid: str) -> str:
    """Move a waiting caller to voicemail (policy 4.1: a form of contact is kept)."""
    if not _live(call_sid).waiting:
        return "caller no longer waiting"
    twilio_rest.redirect_call(_client(), call_sid, _url("/voicemail", call=call_sid))
    update_live(services().worker_redis, call_sid, LiveCall(state=CallState.VOICEMAIL))
    _waiting().leave(call_sid)
    _stop_ringing(call_sid, _live(call_sid))
    return "sent to voicemail"


def _stop_ringing(call_sid: str, live: LiveCall) -> None:
    """Cancel a staff phone still ringing for a caller who has moved on, and free its owner."""
    if not live.ringing_leg_sid or live.staff_id is not None:
        return
    _cancel_leg(live.ringing_leg_sid)
    if live.ringing_staff_id is not None:
        _give_back(live.ringing_staff_id, call_sid)


def _cancel_leg(leg_sid: str) -> None:
    try:
        twilio_rest.cancel_call(_client(), leg_sid)
    except twilio_rest.TwilioRefused as refused:
        log.info("staff leg already over: %s", refused)  # it was answered or ended meanwhile


@with_call_sid
def offer_voicemail_if_waiting(call_sid: str) -> str:
    """send_to_voicemail, under the name of max-wait jobs scheduled before effects were typed."""
    return send_to_voicemail(call_sid)


@with_call_sid
def call_finished(call_sid: str) -> str:
    """The caller hung up: stop any phone still ringing for them, free whoever was on the call."""
    queued_by = _waiting().leave(call_sid)
    # Their timers need not fire: the voicemail offer after the longest wait, and the retry of
    # the dispatch that found nobody free (each a job, seconds or minutes on). One already due
    # runs and finds the caller gone, as before.
    timers = [MAX_WAIT_KEY] + ([] if queued_by is None else [dispatch_key(queued_by + 1)])
    live = _cancel_delayed(call_sid, timers)
    _stop_ringing(call_sid, live)
    freed = [staff_id for staff_id in (live.staff_id, live.ringing_staff_id)
             if staff_id is not None and _pool().release(staff_id, call_sid)]
    for staff_id in freed:
        _offer_soon(staff_id)
    return f"freed {', '.join(map(str, freed)) or 'nobody'}"


def _cancel_delayed(call_sid: str, keys: list[str]) -> LiveCall:
    """Take a call's delayed jobs with these effect keys off the schedule; returns the call's
    live state, read in the same round trip."""
    queue = services().queue
    with queue.connection.pipeline(transaction=False) as pipe:
        for key in keys:
            job_id = job_id_for(call_sid, key)
            queue.scheduled_job_registry.remove(job_id, pipeline=pipe)
            pipe.delete(queue.job_class.key_for(job_id))
        pipe.hgetall(live_key(call_sid))
        return LiveCall.decode(pipe.execute()[-1])


@with_call_sid
def count_call(call_sid: str, entry_id: int, answered: str) -> str:
    """A call put through counts towards its caller's frequency limit (policy 4.6)."""
    return call_limits.count_call(services(), call_sid, entry_id, answered)


@with_call_sid
def warn_of_time_limit(call_sid: str, minutes: int) -> str:
    """Two minutes before the agreed call length: the caller hears a polite warning."""
    return call_limits.warn_of_time_limit(services(), call_sid, minutes)


@with_call_sid
def end_at_time_limit(call_sid: str, minutes: int) -> str:
    """At the agreed call length: the closing statement, then the call ends."""
    return call_limits.end_at_time_limit(services(), call_sid, minutes)


# The one table from the core's effects to the jobs that carry them out; each job takes the
# CallSid, then the effect's fields in order.
JOBS: dict[type[CallEffect], Callable[..., str]] = {
    DialPool: dispatch_to_pool,
    DialPerson: dial_staff,
    NextAgent: agent_missed,
    OfferVoicemail: send_to_voicemail,
    FreeStaff: staff_free,
    PassedOn: passed_on,
    CallerLeft: call_finished,
    CountCall: count_call,
    WarnOfTimeLimit: warn_of_time_limit,
    EndAtTimeLimit: end_at_time_limit,
}
JOBS_BY_NAME = {effect.name: job for effect, job in JOBS.items()}


def run_now(call_sid: str, effect: CallEffect) -> str:
    """Carry out an effect in this job, through its job in the table."""
    return JOBS[type(effect)](call_sid, *effect.arguments())


def run_effects(effects: list[tuple[str, str, tuple]]) -> dict[str, str]:
    """Carry out several calls' effects, each (job id, effect name, job arguments), in one job.

    rq's own cost of a job (about ten Redis round trips) is then shared by a pump round's
    effects instead of paid by each. Each call's effects run in turn, as their own jobs would,
    and different calls' side by side, so that one call's REST request (a dial: Twilio takes
    100-300 ms) does not hold up the others. One that fails does not hold up the rest: it is
    started again as a job of its own, under its own id and with the retries it would have had
    alone. Returns each effect's outcome by id.
    """
    by_call: dict[str, list[tuple[str, str, tuple]]] = {}
    for effect in effects:
        by_call.setdefault(effect[2][0], []).append(effect)
    calls = list(by_call.values())
    services()  # built here, once, if this is the process's first job, not in each thread
    done = (map(_run_in_turn, calls) if len(calls) == 1
            else _side_by_side().map(_run_in_turn, calls))
    outcomes = {job_id: outcome for each_call in done for job_id, outcome in each_call.items()}
    return {job_id: outcomes[job_id] for job_id, _name, _args in effects}


@cache
def _side_by_side() -> ThreadPoolExecutor:
    """The worker's threads for different calls' effects (made once, on first use)."""
    return ThreadPoolExecutor(EFFECT_THREADS, thread_name_prefix="effects")


def _run_in_turn(effects: list[tuple[str, str, tuple]]) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for job_id, name, args in effects:
        job = JOBS_BY_NAME[name]
        try:
            outcomes[job_id] = job(*args)
        except Exception as error:
            log.warning("effect %s failed (%s); it will be tried again as a job of its own",
                        job_id, error_type(error))
            services().queue.enqueue_in(
                timedelta(seconds=EFFECT_RETRY.intervals[0]), job, *args, job_id=job_id,
                retry=EFFECT_RETRY, result_ttl=EFFECT_RESULT_TTL)
            outcomes[job_id] = f"failed ({error_type(error)}); to be tried again alone"
        else:
            log.info("Effect OK (%s)", job_id)
    return outcomes
