"""Twilio's voice webhooks after the incoming call (webhooks/incoming.py): record, answer TwiML."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from flask import Blueprint, current_app, request
from werkzeug.exceptions import BadRequest, HTTPException

from callflow import events
from callflow.answering_machine import MACHINE_STATUS, answered_by_machine
from callflow.call_state import CALL_SID_PATTERN, FINAL_STATUSES, CallState
from callflow.decision import Caller, Decision, Outcome, decide, voicemail_offers_emergency
from callflow.effects import (
    CallEffect,
    CallerLeft,
    DialPerson,
    FreeStaff,
    Leg,
    NextAgent,
    OfferVoicemail,
    after_unanswered,
    passed_on,
)
from callflow.events import Event
from callflow.recording import on_register, records_call
from config import clock
from config.centre import centre_for
from config.logging_setup import clear_call_sid, set_call_sid
from config.settings import Settings
from store.call_events import Batch, CallEventSink, Effect
from store.live_call import LiveCall, read_live
from store.voice_urls import VOICE_PREFIX, voice_url
from usecases.bootstrap import services_of
from webhooks import twilio_params as tp
from webhooks import twiml
from webhooks.conference_status import follow_up
from webhooks.signature import twilio_form, twilio_signed

log = logging.getLogger(__name__)

voice = Blueprint("voice", __name__, url_prefix=VOICE_PREFIX)
STAFF_ID_PATTERN = re.compile(r"^\d{1,9}$")
DIGITS_PATTERN = re.compile(r"^[0-9*#]{0,20}$")
CALL_STATUS_PATTERN = re.compile(r"^[a-z-]{1,20}$")
SEQUENCE_PATTERN = re.compile(r"^\d{1,9}$")
NO_CONTENT = ("", 204)


def _services():
    return services_of(current_app)


def _sink() -> CallEventSink:
    return _services().event_sink


def public_url(path: str, **query: object) -> str:
    """An absolute URL Twilio can call back, on PUBLIC_BASE_URL."""
    return voice_url(_services().settings.public_base_url, path, **query)


def _param(source, name: str, pattern: re.Pattern[str], *, required: bool = True) -> str:
    value = source.get(name, "")
    if not value:
        if required:
            raise BadRequest(f"missing parameter {name}")
        return ""
    if not pattern.match(value):
        raise BadRequest(f"parameter {name} is malformed")
    return value


def _call_sid() -> str:
    sid = _param(twilio_form(), tp.CALL_SID, CALL_SID_PATTERN)
    set_call_sid(sid)
    return sid


def _query_call() -> str:
    sid = _param(request.args, "call", CALL_SID_PATTERN)
    set_call_sid(sid)
    return sid


@voice.before_request
def _log_with_call_sid() -> None:
    # The caller's call, for the log, before anything reads the body; ?call= names it when the
    # request is about another leg (a staff phone's status, a conference event).
    set_call_sid(request.args.get("call"))


@voice.teardown_request
def _forget_call_sid(_error: BaseException | None) -> None:
    clear_call_sid()


def _emit(sid: str, *recorded: Event, effects: tuple[Effect, ...] = (),
          live: LiveCall | None = None) -> bool:
    return _sink().emit(Batch.of(sid, *recorded, effects=effects, live=live))


def trouble_twiml(settings: Settings) -> str:
    """What a caller hears when something failed: an apology, the emergency option, voicemail."""
    base = settings.public_base_url
    return twiml.trouble(
        emergency_number=settings.emergency_number, menu_url=voice_url(base, "/menu"),
        action_url=voice_url(base, "/recorded"), recording_url=voice_url(base, "/recording"),
    )


def render_decision(settings: Settings, sid: str, decision: Decision) -> str:
    """The TwiML that carries out a decision of the core."""
    base = settings.public_base_url
    if decision.connects:
        recorded = records_call(settings.recording, on_register(decision.events))
        return twiml.connect(sid, base_url=base, offer_emergency=decision.offer_emergency,
                             recorded=recorded)
    if decision.outcome is Outcome.EMERGENCY:
        return twiml.emergency(settings.emergency_number,
                               action_url=voice_url(base, "/emergency-ended", call=sid))
    return twiml.message(decision.message, offer_emergency=decision.offer_emergency,
                         menu_url=voice_url(base, "/menu"))


def _trouble() -> str:
    return trouble_twiml(_services().settings)


@voice.errorhandler(Exception)
def _never_fail_a_caller(error: Exception):
    """Any fault after the signature check still answers TwiML that routes the caller."""
    if isinstance(error, HTTPException):
        return error
    log.exception("voice webhook failed; answering with the trouble route")
    return twiml.respond_text(_trouble())


MENU_THEN = frozenset({"", "wait", "voicemail"})


@voice.post("/menu")
@twilio_signed
def menu():
    """The caller pressed a key at an emergency offer: the emergency line, or on as before.

    ?then= says where any other key leads: "wait" (into the caller's conference), "voicemail"
    (the tone and the recording), or nothing (goodbye, after a message).
    """
    form = twilio_form()
    sid = _call_sid()
    digits = _param(form, tp.DIGITS, DIGITS_PATTERN, required=False)
    then = request.args.get("then", "")
    if then not in MENU_THEN:
        raise BadRequest("parameter then is malformed")
    s = _services()
    now = clock.now_utc()
    decision = decide(Caller(call_sid=sid, number=None), centre_for(s.settings, now.year), now,
                      digits=digits or "none")
    if decision.outcome is Outcome.EMERGENCY:
        # Nobody is dialled for the caller now; as after a hang-up, a phone still ringing for
        # them is stopped and its owner freed.
        _emit(sid, *decision.events, live=LiveCall(state=CallState.EMERGENCY),
              effects=(Effect.of(CallerLeft(), "left-for-emergency"),) if then == "wait" else ())
        return twiml.respond_text(render_decision(s.settings, sid, decision))
    # The caller is still whoever the incoming call decided they were: only their key press is
    # news (the core's decision here knows no register entry, so it is not recorded).
    _emit(sid, events.emergency_declined(now, digits or ""))
    if then == "wait":
        # Recorded as the incoming call decided; the caller was told so before the offer.
        recorded = records_call(s.settings.recording, read_live(s.redis, sid).restricted)
        return twiml.respond_text(twiml.connect(sid, base_url=s.settings.public_base_url,
                                                greeting=twiml.HOLD_AGAIN, recorded=recorded,
                                                notice=False))
    if then == "voicemail":
        return twiml.respond_text(twiml.voicemail(
            action_url=public_url("/recorded", call=sid),
            recording_url=public_url("/recording", call=sid), apologised=True))
    return twiml.respond_text(twiml.goodbye())


@voice.post("/emergency-ended")
@twilio_signed
def emergency_ended():
    """The emergency line's leg ended."""
    sid = _query_call()
    status = _param(twilio_form(), tp.DIAL_CALL_STATUS, CALL_STATUS_PATTERN, required=False)
    _emit(sid, events.emergency_ended(clock.now_utc(), status))
    if status and status != "completed":
        return twiml.respond_text(twiml.voicemail(
            action_url=public_url("/recorded", call=sid), recording_url=public_url("/recording"),
            preface=["Sorry, the emergency repairs line did not answer."],
        ))
    return twiml.respond_text(twiml.hangup())


@voice.post("/hold")
@twilio_signed
def hold():
    """Hold music for a caller waiting in their conference."""
    return twiml.respond_text(twiml.hold(_services().settings.hold_music_url))


@voice.post("/agent/join")
@twilio_signed
def agent_join():
    """A member of staff answered: join them to the caller's conference."""
    sid = _query_call()
    staff_id = _param(request.args, "staff", STAFF_ID_PATTERN)
    leg = Leg(request.args.get("leg", Leg.POOL.value))
    now = clock.now_utc()
    answered_by = twilio_form().get(tp.ANSWERED_BY, "")
    if answered_by_machine(answered_by):
        # Issue 14: a voicemail or fax never takes the caller; it is no answer (policy 4.1).
        attempt = _param(request.args, "attempt", STAFF_ID_PATTERN, required=False) or "0"
        machine = events.answering_machine(now, int(staff_id), attempt, leg.value, answered_by)
        _unanswered(sid, int(staff_id), attempt, leg, MACHINE_STATUS, now, machine)
        return twiml.respond_text(twiml.hangup())
    if not read_live(_services().redis, sid).waiting:
        # The caller hung up, or moved on to voicemail while this phone rang.
        _emit(sid, events.answered_too_late(now, int(staff_id)))
        return twiml.respond_text(twiml.goodbye(["Sorry, the caller is no longer waiting."]))
    # The leg that answered, so that the conference's callbacks can tell staff from others.
    answered = twilio_form().get(tp.CALL_SID, "")
    _emit(sid, events.connected(now, int(staff_id), leg.value),
          live=LiveCall(state=CallState.CONNECTED, staff_id=int(staff_id),
                        ringing_leg_sid=answered if CALL_SID_PATTERN.match(answered) else None))
    return twiml.respond_text(twiml.join_conference(sid))


@voice.post("/agent/status")
@twilio_signed
def agent_status():
    """Status of a staff leg; an unanswered one moves the caller on (policy 4.1)."""
    sid = _query_call()
    staff_id = int(_param(request.args, "staff", STAFF_ID_PATTERN))
    attempt = _param(request.args, "attempt", STAFF_ID_PATTERN, required=False) or "0"
    leg = Leg(request.args.get("leg", Leg.POOL.value))
    status = _param(twilio_form(), tp.CALL_STATUS, CALL_STATUS_PATTERN)
    if status not in FINAL_STATUSES:
        return NO_CONTENT
    key = f"agent:{staff_id}:{attempt}"
    now = clock.now_utc()
    if status == "completed":
        if answered_by_machine(twilio_form().get(tp.ANSWERED_BY, "")):
            return NO_CONTENT  # a machine's leg: /agent/join moved the caller on already
        _emit(sid, events.agent_left(now, staff_id, attempt),
              effects=(Effect.of(FreeStaff(staff_id), f"free:{key}"),))
        return NO_CONTENT
    _unanswered(sid, staff_id, attempt, leg, status, now)
    return NO_CONTENT


def _unanswered(sid: str, staff_id: int, attempt: str, leg: Leg, status: str, now: datetime,
                *first: Event) -> None:
    """A leg not answered by a person: record it and move the caller on (policy 4.1)."""
    key = f"agent:{staff_id}:{attempt}"
    fallback = request.args.get("fallback", "")
    step = after_unanswered(leg, staff_id, int(attempt),
                            int(fallback) if fallback.isdigit() else None)
    effects: tuple[Effect, ...] = (Effect.of(step, _step_key(step, key)),)
    if not isinstance(step, NextAgent):  # a pool agent is freed (and set away) by the next step
        effects = (Effect.of(FreeStaff(staff_id), f"free:{key}"), *effects)
    note = passed_on(leg, staff_id, step)
    if note is not None:
        effects += (Effect.of(note, f"passed-on:{key}"),)
    _emit(sid, *first, events.no_answer(now, staff_id, attempt, status, leg.value, step),
          effects=effects)


def _step_key(step: CallEffect, key: str) -> str:
    """The key of what follows an unanswered leg: one fallback and one voicemail per call."""
    if isinstance(step, DialPerson):
        return f"dial:fallback:{step.staff_id}"
    if isinstance(step, OfferVoicemail):
        return "voicemail"
    return f"missed:{key}"


@voice.post("/conference")
@twilio_signed
def conference_events():
    """Conference status callbacks: keep the ConferenceSid the console needs for announcements."""
    sid = _query_call()
    form = twilio_form()
    name = form.get(tp.STATUS_CALLBACK_EVENT, "")
    conference_sid = form.get(tp.CONFERENCE_SID, "")
    participant = form.get(tp.CALL_SID, "")
    sequence = form.get(tp.SEQUENCE_NUMBER, "")
    live = LiveCall(conference_sid=conference_sid) if conference_sid.startswith("CF") else None
    now = clock.now_utc()
    # Issue 14: whether the warning played, and who left and why, on the call's timeline.
    more, changes = follow_up(sid, lambda: read_live(_services().redis, sid), form, now)
    if changes is not None:
        changes.conference_sid = live.conference_sid if live else None
        live = changes
    _emit(sid, events.conference(now, name, participant, sequence, conference_sid), *more,
          live=live)
    return NO_CONTENT


@voice.post("/left")
@twilio_signed
def left_conference():
    """The caller's conference ended (the staff member hung up, or was ended by the console)."""
    return twiml.respond_text(twiml.hangup())


@voice.post("/voicemail")
@twilio_signed
def take_voicemail():
    """Nobody could take the call: record a message (policy 4.1)."""
    sid = _query_call()
    s = _services()
    now = clock.now_utc()
    restricted = read_live(s.redis, sid).restricted
    offer = voicemail_offers_emergency(restricted, centre_for(s.settings, now.year))
    _emit(sid, events.voicemail_offered(now), live=LiveCall(state=CallState.VOICEMAIL))
    return twiml.respond_text(twiml.voicemail(
        action_url=public_url("/recorded", call=sid),
        recording_url=public_url("/recording", call=sid),
        offer_url=public_url("/menu", then="voicemail") if offer else None))


@voice.post("/recorded")
@twilio_signed
def recorded():
    """The caller finished a voicemail."""
    form = twilio_form()
    sid = _call_sid()
    _emit(sid, events.voicemail(clock.now_utc(), form.get(tp.RECORDING_SID, ""),
                                form.get(tp.RECORDING_URL, ""),
                                form.get(tp.RECORDING_DURATION, "")))
    return twiml.respond_text(twiml.goodbye(["Thank you, we have your message."]))


@voice.post("/recording")
@twilio_signed
def recording_status():
    """Twilio's recording status callback: the recording is ready (or failed)."""
    form = twilio_form()
    sid = _call_sid()
    _emit(sid, events.recording(clock.now_utc(), form.get(tp.RECORDING_SID, ""),
                                form.get(tp.RECORDING_URL, ""), form.get("RecordingStatus", "")))
    return NO_CONTENT


@voice.post("/status")
@twilio_signed
def call_status():
    """The caller's call status callback; answers 204 at once, the workers do the rest."""
    form = twilio_form()
    sid = _call_sid()
    status = _param(form, tp.CALL_STATUS, CALL_STATUS_PATTERN)
    duration = form.get(tp.CALL_DURATION, "")
    sequence = form.get(tp.SEQUENCE_NUMBER, "")
    if not SEQUENCE_PATTERN.match(sequence):
        sequence = ""  # an odd one is no sequence: the hang-up itself must not be refused
    sent_at = form.get(tp.TIMESTAMP, "")
    effects: tuple[Effect, ...] = ()
    live = None
    if status in FINAL_STATUSES:
        effects = (Effect.of(CallerLeft(), "finished"),)
        live = LiveCall(state=CallState.ENDED)
    # Twilio's retry of one callback repeats its SequenceNumber (or Timestamp): one event; two
    # callbacks with the same status are two.
    key = f"status:{status}:{sequence or sent_at[:40]}"
    _emit(sid, events.status(clock.now_utc(), key, status,
                             int(duration) if duration.isdigit() else None,
                             int(sequence) if sequence else None),
          effects=effects, live=live)
    return NO_CONTENT


@voice.post("/fallback")
@twilio_signed
def fallback():
    """Twilio's fallback URL: answers without Redis or the database, keeping the call recorded.

    Set this as the number's "Primary handler fails" URL in the Twilio console.
    """
    form = twilio_form()
    sid = form.get(tp.CALL_SID, "")
    if CALL_SID_PATTERN.match(sid):
        _sink().spool(Batch(sid, (events.fallback(clock.now_utc(),
                                                  error=form.get("ErrorCode", "")),)))
    return twiml.respond_text(_trouble())
