"""POST /twilio/voice/incoming: every call to the contact centre starts here.

It is served as a bare WSGI handler in front of Flask. Flask's request and app contexts, its
Request and Response objects and the console's hooks cost about 270 µs of the 700 µs this
request took in-process (bench/README.md), and every other webhook keeps them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from http import HTTPStatus
from time import perf_counter

from redis import RedisError
from werkzeug.wsgi import get_content_length, get_input_stream

from callflow import events
from callflow.call_limits import counting_window
from callflow.call_state import CALL_SID_PATTERN, CallState
from callflow.decision import Caller, Decision, decide
from callflow.effects import (
    MAX_WAIT_KEY,
    CallEffect,
    DialPerson,
    OfferVoicemail,
    dispatch_key,
)
from callflow.phone import caller_key
from config import clock
from config.centre import centre_for
from config.logging_setup import call_sid_bound
from config.metrics import decision_counter, webhook_counter, webhook_timer
from store.call_events import Batch, Effect
from store.call_limits import CallTally
from store.live_call import LiveCall
from store.lookup import UNREADABLE, CacheRead, CallerLookup, cache_unavailable
from store.voice_urls import VOICE_PREFIX
from usecases.bootstrap import Services
from webhooks import twilio_params as tp
from webhooks.signature import MAX_WEBHOOK_BYTES, Refused, verified_form
from webhooks.voice import render_decision, trouble_twiml

log = logging.getLogger(__name__)

PATH = f"{VOICE_PREFIX}/incoming"
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class IncomingCalls:
    """WSGI middleware: answers PATH itself and passes every other request to the Flask app."""

    def __init__(self, app: WSGIApp, services: Services):
        self.app = app
        self.services = services

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        started = perf_counter()
        status: list[str] = []

        def recorded_start(line: str, headers: list, exc_info: object = None) -> Callable:
            status.append(line)
            return start_response(line, headers, exc_info)

        body = self._answer(environ, recorded_start)
        # Two in-memory (mmap) writes; what needs Redis or the database is read at scrape time.
        webhook_timer(PATH).observe(perf_counter() - started)
        webhook_counter(PATH, int(status[0][:3])).inc()
        return body

    def _answer(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _plain(start_response, 405, "use POST", [("Allow", "POST")])
        if (get_content_length(environ) or 0) > MAX_WEBHOOK_BYTES:
            return _plain(start_response, 413, "the request body is too large")
        settings = self.services.settings
        query = environ.get("QUERY_STRING", "")
        try:
            form = verified_form(
                settings.twilio_auth_token, settings.public_base_url + PATH
                + (f"?{query}" if query else ""),
                get_input_stream(environ, max_content_length=MAX_WEBHOOK_BYTES).read(),
                environ.get("HTTP_X_TWILIO_SIGNATURE", ""),
                environ.get("HTTP_X_TWILIO_WEBHOOKS_SIGNATURE_SETTINGS"))
        except Refused as refused:
            return _plain(start_response, refused.status, refused.message)
        sid = form.get(tp.CALL_SID, "")
        if not CALL_SID_PATTERN.match(sid):
            problem = f"parameter {tp.CALL_SID} is malformed" if sid else (
                f"missing parameter {tp.CALL_SID}")
            return _plain(start_response, 400, problem)
        with call_sid_bound(sid):
            try:
                xml = answer_incoming(self.services, sid, form, clock.now_utc())
            except Exception:
                # Any fault after the signature check still answers TwiML that routes the caller.
                log.exception("incoming call failed; answering with the trouble route")
                xml = trouble_twiml(settings)
        return _twiml(start_response, xml)


def answer_incoming(s: Services, sid: str, form: Mapping[str, str], now: datetime) -> str:
    """Look the caller up, decide, record the decision for the workers; the TwiML to answer."""
    raw_from = form.get(tp.FROM)
    number = caller_key(raw_from)
    redis_answered = True
    if number is None:
        found = s.lookup.without_number(raw_from)
    else:
        # Most callers are not on the register: decide as if this one is not, and let one
        # round trip to Redis both check and, if so, record that decision.
        unlisted = s.lookup.not_listed(number)
        decision = _decide(s, sid, form, unlisted, now)
        try:
            recorded, cached = s.event_sink.emit_unless_listed(
                number, _batch(s, sid, unlisted, decision, now))
        except (RedisError, OSError) as error:
            cache_unavailable(error)
            recorded, cached, redis_answered = False, None, False
        if recorded:
            decision_counter(decision.outcome.value).inc()
            return render_decision(s.settings, sid, decision)
        read = CacheRead(complete=True, value=cached) if cached is not None else UNREADABLE
        found = s.lookup.answer(number, read, now.astimezone(s.settings.tz).date())
    decision = _decide(s, sid, form, found, now, _recent_calls(s, found, now))
    decision_counter(decision.outcome.value).inc()
    batch = _batch(s, sid, found, decision, now)
    # No worker can dial anyone while Redis is down: a caller who would be put through is
    # offered the emergency line and voicemail instead of hold music that nobody will answer,
    # and what is spooled says so, so that its replay rings nobody for them.
    unreached = _offered_voicemail(batch, now) if decision.connects else batch
    if redis_answered:
        delivered = s.event_sink.emit(batch, spool_instead=unreached)
    else:
        s.event_sink.spool(unreached)  # Redis has just failed: the caller does not wait twice
        delivered = False
    if not delivered and decision.connects:
        return trouble_twiml(s.settings)
    return render_decision(s.settings, sid, decision)


def _offered_voicemail(batch: Batch, now: datetime) -> Batch:
    """The batch of a caller who was to be put through but hears the trouble route instead."""
    fallback = events.fallback(now, "fallback:unreached")
    return Batch(batch.call_sid, (*batch.events, fallback), (),
                 {**batch.live, **LiveCall(state=CallState.VOICEMAIL).encode()})


def _decide(s: Services, sid: str, form: Mapping[str, str], found: CallerLookup,
            now: datetime, recent_calls: tuple[datetime, ...] = ()) -> Decision:
    caller = Caller(call_sid=sid, number=found.number, called=form.get(tp.TO, ""),
                    withheld=found.withheld, restriction=found.restriction,
                    lookup_failed=found.failed, lookup_source=found.source,
                    recent_calls=recent_calls)
    return decide(caller, centre_for(s.settings, now.year), now)


def _batch(s: Services, sid: str, found: CallerLookup, decision: Decision,
           now: datetime) -> Batch:
    live = LiveCall(
        state=CallState.WAITING if decision.connects else CallState.MESSAGE,
        outcome=decision.outcome.value,
        number=found.number or "",
        withheld=found.withheld,
        lookup_failed=found.failed,
        entry_id=found.restriction.entry_id if found.restriction else None,
        started=now.isoformat(),
        fallback_staff_id=decision.fallback_staff_id,
    )
    return Batch(sid, decision.events, _effects(s, sid, decision), live.encode())


def _effects(s: Services, sid: str, decision: Decision) -> tuple[Effect, ...]:
    """Who to ring first for a caller put through, and voicemail after the longest wait."""
    if not decision.connects:
        return ()
    first = tuple(_recorded(effect, "dial:designated" if isinstance(effect, DialPerson)
                            else dispatch_key(0)) for effect in decision.effects)
    later = tuple(Effect.of(step.effect, step.key, step.delay_seconds) for step in decision.later)
    return *first, *later, _recorded(OfferVoicemail(), MAX_WAIT_KEY, s.settings.max_wait_seconds)


def _recent_calls(s: Services, found: CallerLookup, now: datetime) -> tuple[datetime, ...]:
    """The caller's calls put through lately, when a frequency limit applies (policy 4.6)."""
    restriction = found.restriction
    if restriction is None or not restriction.call_limits.limits_frequency:
        return ()
    try:
        return CallTally(s.redis).recent(restriction.entry_id,
                                         now - counting_window(restriction.call_limits))
    except (RedisError, OSError) as error:
        # Without the tally the limit cannot be judged: the call goes ahead (4.1 keeps contact).
        log.warning("call tally unavailable, frequency limit not applied: %s",
                    type(error).__name__)
        return ()


@lru_cache(maxsize=256)
def _recorded(effect: CallEffect, key: str, delay_seconds: int = 0) -> Effect:
    # The same few effects start every call: each is built once (they are immutable values).
    return Effect.of(effect, key, delay_seconds)


def _plain(start_response: Callable, status: int, message: str,
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = f"{message}\n".encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
        *headers])
    return [body]


def _twiml(start_response: Callable, xml: str) -> list[bytes]:
    body = xml.encode()
    start_response("200 OK", [
        ("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store")])
    return [body]
