"""Twilio's voice webhooks after the incoming call (webhooks/incoming.py): record, answer TwiML."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from flask import Blueprint, current_app, request
from werkzeug.exceptions import BadRequest, HTTPException

from callflow.decision import (
    Caller,
    Decision,
    Event,
    Leg,
    Outcome,
    after_unanswered,
    decide,
    voicemail_offers_emergency,
)
from config import clock
from config.centre import centre_for
from config.logging_setup import clear_call_sid, set_call_sid
from config.settings import Settings
from store.call_events import Batch, CallEventSink, Effect, live_call
from usecases.bootstrap import services_of
from webhooks import twilio_params as tp
from webhooks import twiml
from webhooks.signature import twilio_form, twilio_signed

log = logging.getLogger(__name__)

voice = Blueprint("voice", __name__, url_prefix="/twilio/voice")

CALL_SID_PATTERN = re.compile(r"^CA[0-9a-fA-F]{32}$")
STAFF_ID_PATTERN = re.compile(r"^\d{1,9}$")
DIGITS_PATTERN = re.compile(r"^[0-9*#]{0,20}$")
CALL_STATUS_PATTERN = re.compile(r"^[a-z-]{1,20}$")
SEQUENCE_PATTERN = re.compile(r"^\d{1,9}$")
NO_CONTENT = ("", 204)


def _services():
    return services_of(current_app)


def _sink() -> CallEventSink:
    return _services().event_sink


def voice_url(base_url: str, path: str, **query: object) -> str:
    """An absolute URL of a voice webhook, for Twilio to call back."""
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base_url}/twilio/voice{path}{suffix}"


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


def _event(kind: str, key: str, **detail: object) -> Event:
    return Event(kind, key, clock.now_utc(), detail)


def _emit(sid: str, *events: Event, effects: tuple[Effect, ...] = (),
          live: dict[str, str] | None = None) -> bool:
    return _sink().emit(Batch(sid, tuple(events), effects, live or {}))


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
        return twiml.connect(sid, base_url=base, offer_emergency=decision.offer_emergency)
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
        _emit(sid, *decision.events, live={"state": "emergency"},
              effects=(Effect("workers.calls.call_finished", "left-for-emergency", (sid,)),)
              if then == "wait" else ())
        return twiml.respond_text(render_decision(s.settings, sid, decision))
    # The caller is still whoever the incoming call decided they were: only their key press is
    # news (the core's decision here knows no register entry, so it is not recorded).
    _emit(sid, _event("emergency_declined", f"menu:{digits or 'none'}", digits=digits or ""))
    if then == "wait":
        return twiml.respond_text(twiml.connect(sid, base_url=s.settings.public_base_url,
                                                greeting=twiml.HOLD_AGAIN))
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
    _emit(sid, _event("emergency_ended", "emergency-ended", dial_status=status))
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
    if live_call(_services().redis, sid).get("state") not in {"waiting", "ringing"}:
        # The caller hung up, or moved on to voicemail while this phone rang.
        _emit(sid, _event("answered_too_late", f"late:{staff_id}", staff_id=int(staff_id)))
        return twiml.respond_text(twiml.goodbye(["Sorry, the caller is no longer waiting."]))
    _emit(sid, _event("connected", f"connected:{staff_id}", staff_id=int(staff_id), leg=leg.value),
          live={"state": "connected", "staff_id": staff_id})
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
    if status not in tp.FINAL_STATUSES:
        return NO_CONTENT
    key = f"agent:{staff_id}:{attempt}"
    if status == "completed":
        _emit(sid, _event("agent_left", f"{key}:completed", staff_id=staff_id),
              effects=(Effect("workers.calls.staff_free", f"free:{key}", (sid, staff_id)),))
        return NO_CONTENT
    fallback = request.args.get("fallback", "")
    step = after_unanswered(leg, int(fallback) if fallback.isdigit() else None)
    event = _event("no_answer", f"{key}:{status}", staff_id=staff_id, status=status,
                   leg=leg.value, next=step.action)
    if step.action == "pool":
        effect = Effect("workers.calls.agent_missed", f"missed:{key}", (sid, staff_id,
                                                                        int(attempt)))
    elif step.action == "dial":
        effect = Effect("workers.calls.dial_staff", f"dial:fallback:{step.staff_id}",
                        (sid, step.staff_id, Leg.FALLBACK.value))
    else:
        effect = Effect("workers.calls.send_to_voicemail", "voicemail", (sid,))
    effects: tuple[Effect, ...] = (effect,)
    if step.action != "pool":  # a pool agent is freed (and set away) by agent_missed
        effects = (Effect("workers.calls.staff_free", f"free:{key}", (sid, staff_id)), effect)
    if leg is Leg.DESIGNATED and step.action != "pool":
        went_to = "fallback" if step.action == "dial" else "voicemail"
        effects += (Effect("workers.calls.passed_on", f"passed-on:{key}",
                           (sid, staff_id, went_to)),)
    _emit(sid, event, effects=effects)
    return NO_CONTENT


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
    live = {"conference_sid": conference_sid} if conference_sid.startswith("CF") else None
    _emit(sid, _event("conference", f"conference:{name}:{participant}:{sequence}",
                      event=name, participant=participant, conference_sid=conference_sid),
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
    restricted = bool(live_call(s.redis, sid).get("entry_id"))
    offer = voicemail_offers_emergency(restricted, centre_for(s.settings, now.year))
    _emit(sid, _event("voicemail_offered", "voicemail-offered"), live={"state": "voicemail"})
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
    recording_sid = form.get(tp.RECORDING_SID, "") or "none"
    _emit(sid, _event("voicemail", f"voicemail:{recording_sid}",
                      recording_url=form.get(tp.RECORDING_URL, ""),
                      duration=form.get(tp.RECORDING_DURATION, "")))
    return twiml.respond_text(twiml.goodbye(["Thank you, we have your message."]))


@voice.post("/recording")
@twilio_signed
def recording_status():
    """Twilio's recording status callback: the recording is ready (or failed)."""
    form = twilio_form()
    sid = _call_sid()
    recording_sid = form.get(tp.RECORDING_SID, "") or "none"
    _emit(sid, _event("recording", f"recording:{recording_sid}:{form.get('RecordingStatus', '')}",
                      recording_url=form.get(tp.RECORDING_URL, ""),
                      status=form.get("RecordingStatus", "")))
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
    if status in tp.FINAL_STATUSES:
        effects = (Effect("workers.calls.call_finished", "finished", (sid,)),)
        live = {"state": "ended"}
    # Twilio's retry of one callback repeats its SequenceNumber (or Timestamp): one event; two
    # callbacks with the same status are two.
    key = f"status:{status}:{sequence or sent_at[:40]}"
    _emit(sid, _event("status", key, status=status,
                      duration=int(duration) if duration.isdigit() else None,
                      sequence=int(sequence) if sequence else None),
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
        _sink().spool(Batch(sid, (_event("fallback", "fallback",
                                          error=form.get("ErrorCode", "")),)))
    return twiml.respond_text(_trouble())
