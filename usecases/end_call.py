"""Warning a caller and ending their call (policy 4.5; threats 4.3), and the wrap-up after.

A call ended for abuse or threats (then, or as wrap-up) gives the member of staff on it time to
recover: no calls for CALLFLOW_RECOVERY_MINUTES.

Twilio is called first and the action recorded only once Twilio has accepted it, so a refusal
leaves nothing half-recorded; each action is done once, and a repeat gets the first result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from callflow.announcement import WarningState, warning_state_at
from callflow.call_state import CallState
from callflow.ending import EndReason, EndRefusal, EndRefused, calls_for_recovery, plan_end
from callflow.events import Event, EventKind
from callflow.recovery import recovery_ends
from config import clock
from store.agent_pool import AgentPool
from store.call_events import Batch
from store.db import transaction
from store.live_call import LIVE_TTL_SECONDS, LiveCall, read_live, set_live, update_live
from store.models import Incident
from store.twilio_rest import TwilioRefused, announce_to_participant, end_call, redirect_call
from store.waiting_callers import WaitingCallers
from usecases.bootstrap import Services
from usecases.calls import (
    CONFERENCE_SID_PATTERN,
    Actor,
    CallContext,
    CallRefused,
    Refusal,
    gone_or_refused,
)
from usecases.idempotency import OnceOnly, Outcome, action_key

WARNINGS_KEY = "callflow:console:warnings:{sid}"
# A second click within this window is the same warning, not another one.
WARNING_REPEAT_SECONDS = 10
ALREADY_ENDED = EndRefusal.ALREADY_ENDED.value
ALREADY_RECORDED = "the reason for this call is already recorded"


class _OncePerCall:
    """An action on a call done once, as its reason and note ask: a repeat asking the same gets
    the first result, one asking otherwise is refused with `conflict`."""

    def __init__(self, services: Services, action: str, sid: str, code: str | None, note: str,
                 conflict: str):
        self.once = OnceOnly(services.redis)
        self.key = action_key(action, sid)
        self.fingerprint = json.dumps([code, note])
        self.conflict = conflict

    def replay(self) -> Outcome | None:
        """The first request's result when this repeats it (RepeatRefused if it differs)."""
        return self.once.replay(self.key, self.fingerprint, self.conflict)

    def run(self, action: Callable[[], dict[str, Any]]) -> Outcome:
        """Carry out `action` once; its result is kept as long as the live call."""
        return self.once.run(self.key, self.fingerprint, LIVE_TTL_SECONDS, action, self.conflict)


def give_warning(services: Services, actor: Actor, call: CallContext,
                 announce_url: str) -> Outcome:
    """Play the warning (at `announce_url`) to the caller alone, and log who gave it."""
    sid = call.sid
    once = OnceOnly(services.redis)
    key = action_key("warning", sid)
    replayed = once.replay(key, "warning", "a warning is already being played")
    if replayed is not None:
        return replayed
    if call.ended:
        raise CallRefused(Refusal.CONFLICT, ALREADY_ENDED)
    conference_sid = (call.live and call.live.conference_sid) or ""
    connected = call.live is not None and call.live.state is CallState.CONNECTED
    if not connected or not CONFERENCE_SID_PATTERN.match(conference_sid):
        raise CallRefused(Refusal.CONFLICT,
                          "the caller is not connected to a member of staff yet")

    def warn() -> dict[str, Any]:
        # Playing from before Twilio is asked: its callback saying the warning played (or
        # failed) may come back before this request does.
        given_at = clock.now_utc()
        before = call.live.warning_state if call.live else None
        update_live(services.redis, sid, LiveCall(warning_state=WarningState.PLAYING.value,
                                                  warning_at=given_at.isoformat()))
        try:
            announce_to_participant(services.twilio, conference_sid, sid,
                                    announce_url=announce_url)
        except Exception as failed:
            set_live(services.redis, sid, {"warning_state": before or ""})
            if isinstance(failed, TwilioRefused):
                raise gone_or_refused(failed) from None
            raise
        count_key = WARNINGS_KEY.format(sid=sid)
        pipe = services.redis.pipeline(transaction=True)
        pipe.incr(count_key)
        pipe.expire(count_key, LIVE_TTL_SECONDS)
        number = int(pipe.execute()[0])
        now = clock.now_utc()
        text = services.settings.warning_text
        detail = {**actor.detail, "text": text}
        warned = Event(EventKind.WARNING, f"warning:{number}", now, detail)
        services.event_sink.emit(Batch.of(sid, warned,
                                          live=LiveCall(warned=True, warnings=number)))
        played = warning_state(services, read_live(services.redis, sid))
        return {"call_sid": sid, "warned": True, "warning": number, "at": now.isoformat(),
                "text": text, "warning_state": played.value if played else None}

    return once.run(key, "warning", WARNING_REPEAT_SECONDS, warn,
                    "a warning is already being played")


def end(services: Services, actor: Actor, call: CallContext, reason: EndReason | None,
        note: str, closing_url: str) -> Outcome:
    """End the call as policy plans it: closing statement (at `closing_url`) or at once.

    Without a reason (one click once warned) the reason is owed as wrap-up: the member of staff
    on the call takes no calls until it is given with wrap_up().
    """
    sid = call.sid
    code = reason.value if reason is not None else None  # stored and answered as plain text
    once = _OncePerCall(services, "end", sid, code, note, ALREADY_ENDED)
    replayed = once.replay()
    if replayed is not None:
        return replayed
    warning = warning_state(services, call.live)
    try:
        plan = plan_end(reason, call.warned, ended=call.ended,
                        staff_on_call=call.staff_id is not None, warning=warning)
    except EndRefused as refused:
        if refused.refusal is EndRefusal.REASON_NEEDED_NOW:
            raise CallRefused(Refusal.INVALID, refused.refusal.value, "reason") from None
        raise CallRefused(Refusal.CONFLICT, refused.refusal.value) from None
    owed_by = call.staff_id if plan.wrap_up_owed else None
    recovering = call.staff_id if calls_for_recovery(reason) else None

    def finish() -> dict[str, Any]:
        now = clock.now_utc()
        with transaction(services.sessions) as db:
            incident = None
            if plan.opens_incident:
                # Policy 4.3: flag for a manager, who reports violence to the police.
                incident = Incident(call_sid=sid, reported_by_id=actor.staff.id, reported_at=now,
                                    category=code, notes=note, status="open")
                db.add(incident)
                db.flush()
            pool = AgentPool(services.redis)
            if owed_by is not None:
                # Before the caller leaves: the agent's leg ends with the conference, and the
                # pool must not hand them the next call in the moment before this lands.
                pool.begin_wrap_up(owed_by, sid)
            recovery_until = _begin_recovery(services, pool, recovering, now)
            try:
                if plan.closing_statement:
                    # Redirected out of the conference, the caller hears the closing statement
                    # and the call ends when it runs out. An announcement followed by an
                    # immediate hang-up would cut the statement off: announcements play
                    # asynchronously.
                    redirect_call(services.twilio, sid, closing_url)
                else:
                    end_call(services.twilio, sid)
            except Exception as failed:
                if owed_by is not None:
                    pool.finish_wrap_up(owed_by, sid)  # the call goes on: nothing is owed
                if recovering is not None and recovery_until is not None:
                    pool.end_recovery(recovering)
                if isinstance(failed, TwilioRefused):
                    raise gone_or_refused(failed) from None
                raise
            detail: dict[str, object] = {**actor.detail, "reason": code, "note": note,
                                         "closing_statement": plan.closing_statement,
                                         "wrap_up_owed": owed_by is not None}
            if warning is not None:
                detail["warning"] = warning.value  # played, or unconfirmed (issue 14)
            if recovery_until is not None:
                detail["recovery_until"] = recovery_until
            events = [Event(EventKind.ENDED_BY_AGENT, "ended_by_agent", now, detail)]
            if incident is not None:
                detail["incident_id"] = incident.id
                events.append(Event(EventKind.INCIDENT, f"incident:{incident.id}", now,
                                    {**actor.detail, "incident_id": incident.id,
                                     "category": code}))
            services.event_sink.emit(Batch.of(sid, *events, live=LiveCall(
                ended_by_agent=True, end_reason=code or "")))
        return {"call_sid": sid, "ended": True, "reason": code, "note": note,
                "closing_statement": plan.closing_statement,
                "wrap_up_owed": owed_by is not None,
                "incident_id": incident.id if incident is not None else None,
                "recovery_until": recovery_until, "at": now.isoformat()}

    return once.run(finish)


def wrap_up(services: Services, actor: Actor, call: CallContext, reason: EndReason,
            note: str) -> Outcome:
    """Record the reason for a call ended in one click; its agent may then take calls again."""
    sid = call.sid
    code = reason.value
    once = _OncePerCall(services, "wrap-up", sid, code, note, ALREADY_RECORDED)
    replayed = once.replay()
    if replayed is not None:
        return replayed
    pool = AgentPool(services.redis)
    owed_by = call.staff_id
    if owed_by is None or pool.wrap_up_owed(owed_by) != sid:
        raise CallRefused(Refusal.CONFLICT, "no reason is waiting for this call")

    def record() -> dict[str, Any]:
        now = clock.now_utc()
        # Recovery first, so that finishing the wrap-up never makes the agent available.
        recovery_until = _begin_recovery(services, pool, owed_by if calls_for_recovery(reason)
                                         else None, now)
        detail: dict[str, object] = {**actor.detail, "reason": code, "note": note}
        if recovery_until is not None:
            detail["recovery_until"] = recovery_until
        services.event_sink.emit(Batch(sid, (Event(EventKind.WRAP_UP, "wrap_up", now, detail),)))
        pool.finish_wrap_up(owed_by, sid, time.time())
        # Available again (unless recovering): the longest-waiting caller is rung for them now.
        WaitingCallers(services.redis).request_offer(services.queue, owed_by)
        return {"call_sid": sid, "reason": code, "note": note,
                "recovery_until": recovery_until, "at": now.isoformat()}

    return once.run(record)


def warning_state(services: Services, live: LiveCall | None) -> WarningState | None:
    """Where the call's last warning stands for ending it now (None: not followed)."""
    if live is None or not live.warning_state:
        return None
    try:
        state = WarningState(live.warning_state)
        given_at = datetime.fromisoformat(live.warning_at) if live.warning_at else None
    except ValueError:
        return None
    return warning_state_at(state, given_at, clock.now_utc(),
                            services.settings.warning_confirm_seconds)


def _begin_recovery(services: Services, pool: AgentPool, staff_id: int | None,
                    now: datetime) -> str | None:
    """Take the member of staff on an abusive call off the queue for the configured minutes.

    Returns when their recovery ends (ISO 8601), or None when there is none to give.
    """
    until = recovery_ends(now, services.settings.recovery_minutes)
    if staff_id is None or until is None:
        return None
    seconds = services.settings.recovery_minutes * 60
    pool.begin_recovery(staff_id, seconds, until.timestamp())
    # When it is over, the longest-waiting caller is rung for them (if they are available).
    WaitingCallers(services.redis).request_offer_later(services.queue, staff_id, seconds + 1)
    return until.isoformat()
