"""Help in one click and a supervisor on the line: ask, answer, listen, coach, barge, switch.

Twilio is called first and a step recorded only once Twilio has accepted it; each step goes on
the call's timeline (who, when, how) through the call-event stream, like a warning does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select

from callflow import words
from callflow.call_state import CallState
from callflow.events import Event, EventKind
from callflow.phone import display
from callflow.roles import Capability, may
from callflow.supervision import (
    MODE_SHORT,
    HelpState,
    SupervisionMode,
    SupervisionRefusal,
    SupervisionRefused,
    alert_text,
    caller_text,
    check_help,
    check_joinable,
    check_switch,
    mode_sentence,
    participant_flags,
    your_mode,
)
from config import clock
from store.agent_pool import AgentPool
from store.call_events import Batch
from store.help_alerts import HelpAlert, HelpAlerts, SupervisorLeg, Supervisors
from store.live_call import LiveCall, live_call_sids, read_live
from store.models import CallEvent, RegisterEntry, Staff
from store.twilio_rest import TwilioRefused, add_supervisor, update_supervisor
from store.voice_urls import voice_url
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

# Below VOICE_PREFIX: Twilio's status callback for a supervisor's leg (webhooks/supervision.py).
SUPERVISOR_STATUS_PATH = "/supervisor/status"
# A second click within this window is the same step, not another one.
REPEAT_SECONDS = 10
STILL_JOINING = "you are already being put through to this call"

_CONFLICTS = {SupervisionRefusal.NO_PHONE: Refusal.INVALID}


def _refused(refused: SupervisionRefused) -> CallRefused:
    return CallRefused(_CONFLICTS.get(refused.refusal, Refusal.CONFLICT), refused.refusal.value)


def _live(call: CallContext) -> LiveCall:
    return call.live if call.live is not None else LiveCall(state=CallState.ENDED)


# --- "I need help" -----------------------------------------------------------------------------


def request_help(services: Services, actor: Actor, call: CallContext) -> dict[str, Any]:
    """Alert every available supervisor that `actor` needs help on the call they are on."""
    live = _live(call)
    try:
        check_help(live.state, bool(live.ended_by_agent), live.staff_id, actor.staff.id)
    except SupervisionRefused as refused:
        raise _refused(refused) from None
    now = clock.now_utc()
    number = HelpAlerts(services.redis).raise_alert(call.sid, actor.staff.id, now.isoformat(),
                                                    time.time())
    if number:
        asked = Event(EventKind.HELP_REQUESTED, f"help:{number}", now, dict(actor.detail))
        services.event_sink.emit(Batch.of(call.sid, asked))
    alert = HelpAlerts(services.redis).get(call.sid)
    return {"call_sid": call.sid, "help": "raised", "repeat": not number,
            "raised_at": alert.raised_at if alert else now.isoformat()}


def answer_help(services: Services, actor: Actor, call: CallContext) -> dict[str, Any]:
    """Answer the call's help alert; the first supervisor to answer is the one logged."""
    now = clock.now_utc()
    answered = HelpAlerts(services.redis).answer(call.sid, actor.staff.id, now.isoformat())
    if answered is None:
        raise _refused(SupervisionRefused(SupervisionRefusal.NO_ALERT))
    if answered.first:
        event = Event(EventKind.HELP_ANSWERED, f"help-answered:{answered.number}", now,
                      dict(actor.detail))
        services.event_sink.emit(Batch.of(call.sid, event))
    names = _names(services, [answered.answered_by] if answered.answered_by else [])
    return {"call_sid": call.sid, "answered": answered.first,
            "answered_by": names.get(answered.answered_by or 0, "another supervisor")}


def help_status(services: Services, call: CallContext) -> dict[str, Any]:
    """Where the call's help request stands, for the agent who asked: who answered, if anyone."""
    alert = HelpAlerts(services.redis).get(call.sid)
    if alert is None:
        return {"call_sid": call.sid, "help": None, "answered_by": None}
    names = _names(services, [alert.answered_by] if alert.answered_by else [])
    return {"call_sid": call.sid, "help": alert.state.value,
            "answered_by": names.get(alert.answered_by) if alert.answered_by else None}


def open_alerts(services: Services, viewer: Staff) -> list[dict[str, Any]]:
    """The help alerts `viewer` should see: those nobody has answered (but their own) while
    they are free, and those they answered, until the call ends."""
    if not may(viewer.role, Capability.LISTEN_IN):
        return []
    free = not AgentPool(services.redis).current_call(viewer.id)  # else not available
    alerts = HelpAlerts(services.redis)
    found = []
    for alert in alerts.alerts():
        live = read_live(services.redis, alert.call_sid)
        if live == LiveCall() or live.state is CallState.ENDED or live.ended_by_agent:
            alerts.close(alert.call_sid)
            continue
        mine = alert.state is HelpState.ANSWERED and alert.answered_by == viewer.id
        waiting = alert.state is HelpState.RAISED and free and alert.staff_id != viewer.id
        if mine or waiting:
            found.append(_alert(services, alert, live, viewer))
    return found


def _alert(services: Services, alert: HelpAlert, live: LiveCall,
           viewer: Staff) -> dict[str, Any]:
    agent = _names(services, [alert.staff_id]).get(alert.staff_id, "An agent")
    reference = _reference(services, live.entry_id)
    caller = caller_text(_number_text(live), reference)
    on_register = live.entry_id is not None
    leg = Supervisors(services.redis).leg_of(alert.call_sid, viewer.id)
    return {"call_sid": alert.call_sid, "agent": agent, "caller": caller,
            "on_register": on_register,
            "raised_at_text": _local(services, alert.raised_at),
            "text": alert_text(agent, caller, on_register),
            "answered_by_you": alert.state is HelpState.ANSWERED,
            "my_mode": leg.mode.value if leg else None}


# --- listen, coach, barge ----------------------------------------------------------------------


def join(services: Services, actor: Actor, call: CallContext,
         mode: SupervisionMode) -> Outcome:
    """Ring the supervisor and put them on the call's conference in `mode`."""
    staff = actor.staff
    once = OnceOnly(services.redis)
    key = action_key(f"supervise:{staff.id}", call.sid)
    replayed = once.replay(key, mode.value, STILL_JOINING)
    if replayed is not None:
        return replayed
    live = _live(call)
    supervisors = Supervisors(services.redis)
    try:
        check_joinable(live.state, bool(live.ended_by_agent), live.staff_id, staff.id)
        if not CONFERENCE_SID_PATTERN.match(live.conference_sid or ""):
            raise SupervisionRefused(SupervisionRefusal.NOT_CONNECTED)
        if supervisors.leg_of(call.sid, staff.id) is not None:
            raise SupervisionRefused(SupervisionRefusal.ALREADY_JOINED)
        if not staff.dial_target:
            raise SupervisionRefused(SupervisionRefusal.NO_PHONE)
        flags = participant_flags(mode, live.ringing_leg_sid)
    except SupervisionRefused as refused:
        raise _refused(refused) from None

    def ring() -> dict[str, Any]:
        try:
            leg_sid = add_supervisor(
                services.twilio, live.conference_sid or "", to=staff.dial_target or "",
                from_=services.settings.twilio_phone_number, muted=flags.muted,
                coaching=flags.coaching, call_sid_to_coach=flags.call_sid_to_coach,
                timeout_seconds=services.settings.agent_ring_seconds,
                status_callback=voice_url(services.settings.public_base_url,
                                          SUPERVISOR_STATUS_PATH, call=call.sid,
                                          staff=staff.id))
        except TwilioRefused as refused:
            raise gone_or_refused(refused) from None
        supervisors.joined(call.sid, SupervisorLeg(staff.id, leg_sid, mode))
        now = clock.now_utc()
        events = [Event(EventKind.SUPERVISOR_JOINED, f"supervisor:{staff.id}:{leg_sid}", now,
                        {**actor.detail, "mode": mode.value, "leg_sid": leg_sid})]
        answered = HelpAlerts(services.redis).answer(call.sid, staff.id, now.isoformat())
        if answered is not None and answered.first:  # joining from the alert answers it
            events.insert(0, Event(EventKind.HELP_ANSWERED, f"help-answered:{answered.number}",
                                   now, dict(actor.detail)))
        services.event_sink.emit(Batch.of(call.sid, *events))
        return {"call_sid": call.sid, "mode": mode.value, "leg_sid": leg_sid,
                "at": now.isoformat(), "text": your_mode(mode)}

    return once.run(key, mode.value, REPEAT_SECONDS, ring, STILL_JOINING)


def switch(services: Services, actor: Actor, call: CallContext,
           mode: SupervisionMode) -> dict[str, Any]:
    """Switch the supervisor on the call to `mode` (listen, coach or barge)."""
    staff = actor.staff
    live = _live(call)
    supervisors = Supervisors(services.redis)
    leg = supervisors.leg_of(call.sid, staff.id)
    try:
        if live.state is CallState.ENDED or live.ended_by_agent:
            raise SupervisionRefused(SupervisionRefusal.ENDED)
        check_switch(leg.mode if leg else None, mode)
        flags = participant_flags(mode, live.ringing_leg_sid)
    except SupervisionRefused as refused:
        raise _refused(refused) from None
    assert leg is not None  # check_switch refuses a supervisor not on the call
    try:
        update_supervisor(services.twilio, live.conference_sid or "", leg.leg_sid,
                          muted=flags.muted, coaching=flags.coaching,
                          call_sid_to_coach=flags.call_sid_to_coach)
    except TwilioRefused as refused:
        raise gone_or_refused(refused) from None
    supervisors.joined(call.sid, SupervisorLeg(staff.id, leg.leg_sid, mode))
    now = clock.now_utc()
    change = supervisors.next_change(call.sid)
    event = Event(EventKind.SUPERVISION_CHANGED, f"supervision:{staff.id}:{change}", now,
                  {**actor.detail, "mode": mode.value, "from_mode": leg.mode.value})
    services.event_sink.emit(Batch.of(call.sid, event))
    return {"call_sid": call.sid, "mode": mode.value, "leg_sid": leg.leg_sid,
            "at": now.isoformat(),
            "text": your_mode(mode)}


# --- the call log's CSV -----------------------------------------------------------------------

SUPERVISION_KINDS = (EventKind.HELP_REQUESTED, EventKind.HELP_ANSWERED,
                     EventKind.SUPERVISOR_JOINED, EventKind.SUPERVISION_CHANGED,
                     EventKind.SUPERVISOR_LEFT)


def supervision_log(services: Services, call_sids: Iterable[str], tz: tzinfo) -> dict[str, str]:
    """Each call's help and supervision steps in one line: who and when, for the CSV export."""
    wanted = list(call_sids)
    if not wanted:
        return {}
    with services.sessions() as db:
        events = list(db.scalars(
            select(CallEvent).where(CallEvent.call_sid.in_(wanted),
                                    CallEvent.kind.in_([k.value for k in SUPERVISION_KINDS]))
            .order_by(CallEvent.at, CallEvent.id)))
        names = _names(services, {int(e.detail["staff_id"]) for e in events
                                  if str(e.detail.get("staff_id", "")).isdigit()})
        steps: dict[str, list[str]] = {}
        for event in events:
            who = names.get(int(event.detail.get("staff_id") or 0), "someone")
            when = words.clock(event.at.astimezone(tz))
            steps.setdefault(event.call_sid, []).append(_csv_step(event.kind, event.detail, who,
                                                                  when))
    return {sid: "; ".join(found) for sid, found in steps.items()}


def _csv_step(kind: str, detail: dict[str, Any], who: str, when: str) -> str:
    if kind == EventKind.HELP_REQUESTED:
        return f"help asked for by {who} at {when}"
    if kind == EventKind.HELP_ANSWERED:
        return f"help answered by {who} at {when}"
    if kind == EventKind.SUPERVISOR_LEFT:
        return f"{who} left at {when}"
    mode = detail.get("mode", "")
    doing = MODE_SHORT[SupervisionMode(mode)] if mode in set(SupervisionMode) else "on the call"
    return f"{who} {doing} from {when}"


# --- every live call ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    sid: str
    live: LiveCall


def live_calls(services: Services, viewer: Staff) -> list[dict[str, Any]]:
    """Every call in progress with its state and flags, oldest first, as supervisors see it."""
    seen = []
    for sid in live_call_sids(services.redis):
        live = read_live(services.redis, sid)
        if live == LiveCall() or live.state is CallState.ENDED:
            continue
        seen.append(_Seen(sid, live))
    seen.sort(key=lambda s: (s.live.started or "", s.sid))
    alerts = HelpAlerts(services.redis)
    supervisors = Supervisors(services.redis)
    on_calls = {s.sid: supervisors.on_call(s.sid) for s in seen}
    ids = {s.live.staff_id for s in seen if s.live.staff_id is not None}
    ids |= {leg.staff_id for legs in on_calls.values() for leg in legs}
    names = _names(services, ids)
    references = _references(services, {s.live.entry_id for s in seen
                                        if s.live.entry_id is not None})
    found = []
    for s in seen:
        live = s.live
        alert = alerts.get(s.sid)
        legs = on_calls[s.sid]
        mine = next((leg.mode.value for leg in legs if leg.staff_id == viewer.id), None)
        found.append({
            "call_sid": s.sid,
            "state": live.state.value if live.state else "unknown",
            "state_text": _state_text(live),
            "caller": caller_text(_number_text(live), references.get(live.entry_id or 0)),
            "started_at_text": _local(services, live.started or ""),
            "agent": names.get(live.staff_id, "") if live.staff_id is not None else "",
            "on_register": live.entry_id is not None,
            "warned": bool(live.warned),
            "help_requested": alert is not None and alert.state is HelpState.RAISED,
            "help_answered": alert is not None and alert.state is HelpState.ANSWERED,
            "supervisors": [mode_sentence(names.get(leg.staff_id, "A supervisor"), leg.mode)
                            for leg in legs],
            "my_mode": mine,
            "joinable": (live.state is CallState.CONNECTED and not live.ended_by_agent
                         and live.staff_id is not None and live.staff_id != viewer.id),
        })
    return found


_STATE_TEXT = {
    CallState.WAITING: "Waiting for an agent",
    CallState.RINGING: "Ringing an agent",
    CallState.CONNECTED: "Connected",
    CallState.MESSAGE: "Hearing a message",
    CallState.EMERGENCY: "Put through to the emergency line",
    CallState.VOICEMAIL: "Leaving a voicemail",
    CallState.ENDED: "Ended",
}


def _state_text(live: LiveCall) -> str:
    if live.ended_by_agent:
        return "Being ended by the agent"
    return _STATE_TEXT.get(live.state, "Unknown") if live.state else "Unknown"


def _number_text(live: LiveCall) -> str:
    if live.withheld:
        return "a withheld number"
    return display(live.number) if live.number else "an unknown number"


def _local(services: Services, iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return ""
    return words.clock(moment.astimezone(services.settings.tz))


def _names(services: Services, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    with services.sessions() as db:
        return {m.id: m.name for m in db.scalars(select(Staff).where(Staff.id.in_(wanted)))}


def _references(services: Services, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(ids)
    if not wanted:
        return {}
    with services.sessions() as db:
        return {e.id: e.customer_ref for e in db.scalars(
            select(RegisterEntry).where(RegisterEntry.id.in_(wanted),
                                        RegisterEntry.anonymised_at.is_(None)))}


def _reference(services: Services, entry_id: int | None) -> str | None:
    if entry_id is None:
        return None
    return _references(services, [entry_id]).get(entry_id)
