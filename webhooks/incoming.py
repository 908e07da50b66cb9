"""POST /twilio/voice/incoming: every call to the contact centre starts here.

It is served as a bare WSGI handler in front of Flask. Flask's request and app contexts, its
Request and Response objects and the console's hooks cost about 270 µs of the 700 µs this
request took in-process (bench/README.md), and every other webhook keeps them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from http import HTTPStatus

from redis import RedisError
from werkzeug.wsgi import get_content_length, get_input_stream

from callflow.decision import Caller, Decision, Event, Leg, Outcome, decide
from callflow.phone import caller_key
from config import clock
from config.centre import centre_for
from config.logging_setup import call_sid_bound
from store.call_events import Batch, Effect
from store.circuit import CircuitOpen
from store.lookup import CallerLookup
from usecases.bootstrap import Services
from webhooks import twilio_params as tp
from webhooks.signature import MAX_WEBHOOK_BYTES, Refused, verified_form
from webhooks.voice import CALL_SID_PATTERN, render_decision, trouble_twiml

log = logging.getLogger(__name__)

PATH = "/twilio/voice/incoming"
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class IncomingCalls:
    """WSGI middleware: answers PATH itself and passes every other request to the Flask app."""

    def __init__(self, app: WSGIApp, services: Services):
        self.app = app
        self.services = services

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
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
        unlisted = CallerLookup(number=number, withheld=False)
        decision = _decide(s, sid, form, unlisted, now)
        try:
            recorded, cached = s.event_sink.emit_unless_listed(
                number, _batch(s, sid, unlisted, decision, now))
        except (RedisError, OSError) as error:
            if not isinstance(error, CircuitOpen):  # the breaker logged the outage once
                log.warning("routing cache unavailable, reading the database: %s",
                            type(error).__name__)
            recorded, cached, redis_answered = False, None, False
        if recorded:
            return render_decision(s.settings, sid, decision)
        today = now.astimezone(s.settings.tz).date()
        found = (s.lookup.from_cached(number, cached, today) if cached is not None
                 else s.lookup.from_database(number, today))
    decision = _decide(s, sid, form, found, now)
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
    fallback = Event("fallback", "fallback:unreached", now, {})
    return Batch(batch.call_sid, (*batch.events, fallback), (),
                 {**batch.live, "state": "voicemail"})


def _decide(s: Services, sid: str, form: Mapping[str, str], found: CallerLookup,
            now: datetime) -> Decision:
    caller = Caller(call_sid=sid, number=found.number, called=form.get(tp.TO, ""),
                    withheld=found.withheld, restriction=found.restriction,
                    lookup_failed=found.failed, lookup_source=found.source)
    return decide(caller, centre_for(s.settings, now.year), now)


def _batch(s: Services, sid: str, found: CallerLookup, decision: Decision,
           now: datetime) -> Batch:
    live = {
        "state": "waiting" if decision.connects else "message",
        "outcome": decision.outcome.value,
        "from": found.number or "",
        "withheld": "1" if found.withheld else "0",
        "lookup_failed": "1" if found.failed else "0",
        "entry_id": str(found.restriction.entry_id) if found.restriction else "",
        "started": now.isoformat(),
        "fallback_staff_id": str(decision.fallback_staff_id or ""),
    }
    return Batch(sid, decision.events, _effects(s, sid, decision), live)


def _effects(s: Services, sid: str, decision: Decision) -> tuple[Effect, ...]:
    if not decision.connects:
        return ()
    max_wait = s.settings.max_wait_seconds
    safety_net = Effect("workers.calls.offer_voicemail_if_waiting", "max-wait", (sid,), max_wait)
    if decision.outcome is Outcome.DESIGNATED_CONTACT:
        first = Effect("workers.calls.dial_staff", "dial:designated",
                       (sid, decision.staff_id, Leg.DESIGNATED.value))
    else:
        first = Effect("workers.calls.dispatch_to_pool", "dispatch:0", (sid, 0))
    return first, safety_net


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
