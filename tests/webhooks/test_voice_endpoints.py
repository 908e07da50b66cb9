"""The voice webhooks' edges: signatures, bad input, failures, and always-valid TwiML."""

import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import request
from twilio.request_validator import RequestValidator

from callflow.call_state import CallState
from callflow.decision import EMERGENCY_OFFER
from callflow.effects import CallerLeft
from callflow.register import parse_entry
from config.settings import EventSpool
from service.app import create_app
from store.call_events import STREAM_KEY, Batch
from store.live_call import read_live
from store.routing_cache import CACHE_KEY
from webhooks.twiml import HOLD_GREETING

BASE = "https://callflow.test"
TOKEN = "test-auth-token"
SID = "CA" + "b" * 32


def sign(url: str, params: dict) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


def post(client, path, params, *, query="", signature=None, **kwargs):
    url = f"{BASE}{path}" + (f"?{query}" if query else "")
    headers = {"X-Twilio-Signature": signature if signature is not None else sign(url, params)}
    return client.post(path + (f"?{query}" if query else ""), data=params, headers=headers,
                       **kwargs)


def twiml(response):
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


def incoming(number="+447700900123"):
    return {"CallSid": SID, "From": number, "To": "+441632960000", "CallStatus": "ringing"}


@pytest.mark.parametrize("signature", ["", "not-a-signature", "sïgnature",
                                       sign(f"{BASE}/other", incoming())])
def test_a_forged_or_missing_signature_is_refused_and_writes_nothing(client, services, signature):
    response = post(client, "/twilio/voice/incoming", incoming(), signature=signature)
    assert response.status_code == 403
    assert services.redis.xlen(STREAM_KEY) == 0
    assert not (services.settings.var_dir / "spool").exists()


def test_a_signed_call_is_answered_with_twiml_and_its_events_are_queued(client, services):
    root = twiml(post(client, "/twilio/voice/incoming", incoming()))
    assert root.find("Say") is not None or root.find("Gather") is not None
    assert services.redis.xlen(STREAM_KEY) == 1


def test_the_signature_covers_the_raw_query_string_as_twilio_sent_it(client, services):
    raw_query = urlencode({"call": SID}) + "&note=a%20b%2Fc"
    params = {"CallSid": SID}
    good = post(client, "/twilio/voice/voicemail", params, query=raw_query)
    assert twiml(good).find("Record") is not None
    reencoded = f"{BASE}/twilio/voice/voicemail?call={SID}&note=a+b/c"
    bad = post(client, "/twilio/voice/voicemail", params, query=raw_query,
               signature=sign(reencoded, params))
    assert bad.status_code == 403


@pytest.mark.parametrize(
    ("params", "message"),
    [({"From": "+447700900123"}, b"missing parameter CallSid"),
     ({"CallSid": "CA123", "From": "+447700900123"}, b"parameter CallSid is malformed")],
)
def test_missing_or_malformed_parameters_get_a_clear_400(client, params, message):
    response = post(client, "/twilio/voice/incoming", params)
    assert response.status_code == 400 and message in response.data


def test_a_body_that_is_not_utf8_gets_400_after_the_signature_check(client):
    body = f"CallSid={SID}&From=%FF%FE".encode()
    params = {"CallSid": SID, "From": "\ufffd\ufffd"}
    response = client.post("/twilio/voice/incoming", data=body,
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": sign(f"{BASE}/twilio/voice/incoming",
                                                               params)})
    assert response.status_code == 400 and b"not valid UTF-8" in response.data
    unsigned = client.post("/twilio/voice/incoming", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 403


def test_a_huge_body_is_refused_without_reading_it(client):
    response = post(client, "/twilio/voice/incoming", {**incoming(), "Junk": "x" * 100_000})
    assert response.status_code == 413


@pytest.mark.parametrize("part", ["emit_unless_listed", "emit"])
def test_an_internal_error_still_answers_twiml_that_keeps_the_caller(client, services,
                                                                      monkeypatch, part):
    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated fault")

    monkeypatch.setattr(services.event_sink, part, broken)
    caller = "anonymous" if part == "emit" else "+447700900123"
    root = twiml(post(client, "/twilio/voice/incoming", incoming(caller)))
    assert root.find("Record") is not None
    assert "emergency" in ET.tostring(root, encoding="unicode")


def test_status_callbacks_answer_204(client):
    response = post(client, "/twilio/voice/status",
                    {"CallSid": SID, "CallStatus": "completed", "CallDuration": "42"})
    assert response.status_code == 204 and response.data == b""


def test_the_fallback_url_answers_without_redis_or_a_database(tmp_path, settings, more_services):

    broken = settings.with_overrides(database_url="postgresql://nobody@127.0.0.1:1/none",
                                     redis_url="redis://127.0.0.1:1/0",
                                     var_dir=tmp_path / "var")
    app = create_app(services=more_services(broken))
    response = post(app.test_client(), "/twilio/voice/fallback",
                    {"CallSid": SID, "From": "+447700900123", "ErrorCode": "11200"})
    root = twiml(response)
    assert root.find("Record") is not None
    spooled = list((tmp_path / "var" / "spool").glob("*.jsonl"))
    assert spooled and SID in spooled[0].read_text()


def test_with_redis_down_a_caller_is_never_left_waiting_and_events_are_spooled(
        tmp_path, settings, services, clock, more_services, monkeypatch):

    down = more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v",
                                                 event_spool=EventSpool.DISK))
    sent = round_trips(down, monkeypatch)
    root = twiml(post(create_app(services=down).test_client(), "/twilio/voice/incoming",
                      incoming("+447700900555")))
    assert root.find("Record") is not None, "nobody can be dialled, so a message is taken"
    assert list((tmp_path / "v" / "spool").glob("*.jsonl"))
    assert sent == ["EVALSHA"], "a caller waits for a failing Redis once, not twice"


@pytest.mark.parametrize("number", ["+447700900555", "anonymous"])
def test_with_redis_down_the_spool_says_the_caller_was_offered_voicemail_so_its_replay_rings_nobody(
        tmp_path, settings, services, clock, more_services, number):
    down = more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v",
                                                 event_spool=EventSpool.DISK))
    post(create_app(services=down).test_client(), "/twilio/voice/incoming", incoming(number))
    (spool,) = (tmp_path / "v" / "spool").glob("*.jsonl")
    lines = spool.read_text().splitlines()
    assert len(lines) == 1
    batch = Batch.decode(json.loads(lines[0]))
    assert batch.effects == (), "no agent is dialled for a caller who is leaving a message"
    assert batch.live["state"] == "voicemail"
    assert [e.kind for e in batch.events][-1] == "fallback"


def test_the_cached_conference_twiml_is_what_the_library_builds_for_each_call():
    from webhooks import twiml as render

    sid = "CA" + "7e" * 16
    built = render._connect(sid, wait_url=f"{BASE}/twilio/voice/hold",
                            action_url=f"{BASE}/twilio/voice/left?call={sid}",
                            events_url=f"{BASE}/twilio/voice/conference?call={sid}")
    assert render.connect(sid, base_url=BASE) == built
    assert render._SID_SLOT not in render.connect(sid, base_url=BASE)


def test_twilio_requests_get_no_cookie_session(client):
    # The incoming call never reaches Flask; the other webhooks do, and skip the session.
    response = post(client, "/twilio/voice/hold", {"CallSid": SID})
    assert "Set-Cookie" not in response.headers
    app = client.application
    sessions = app.session_interface
    for path, null in (("/twilio/voice/hold", True), ("/signin", False)):
        with app.test_request_context(path, method="POST"):
            assert sessions.is_null_session(sessions.open_session(app, request)) is null


# --- one round trip for the common caller ------------------------------------------------------

POI = "+447700900123"


def restrict_written_only(services, clock, staff) -> int:
    fields, errors = parse_entry({
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff",
        "decided_by": "manager@example.org", "decided_on": "2025-12-15",
        "starts_on": "2026-01-01", "ends_on": "2027-12-31", "written_only": "yes",
        "evidence": "written: call notes", "no_warning_reason": "threats to staff",
    })
    assert not errors, errors
    today = clock.now.astimezone(services.settings.tz).date()
    return services.register.save(fields, "manager@example.org", clock.now, today).entry_id


def recorded_batches(services) -> list[Batch]:
    return [Batch.decode(fields) for _, fields in services.redis.xrange(STREAM_KEY)]


def round_trips(services, monkeypatch) -> list[str]:
    """Every command the call path's client sends to Redis, in order."""
    sent: list[str] = []
    real = services.redis.execute_command

    def counting(*args, **options):
        sent.append(str(args[0]))
        return real(*args, **options)

    monkeypatch.setattr(services.redis, "execute_command", counting)
    return sent


@pytest.mark.parametrize("number", ["+447700900555", "anonymous"])
def test_a_caller_not_on_the_register_costs_one_round_trip_to_redis(client, services, clock,
                                                                    staff, monkeypatch, number):
    restrict_written_only(services, clock, staff)
    services.register.rebuild_cache(clock.now.date())
    sent = round_trips(services, monkeypatch)
    root = twiml(post(client, "/twilio/voice/incoming", incoming(number)))
    assert root.find("Dial/Conference") is not None
    assert sent == ["EVALSHA"]
    (batch,) = recorded_batches(services)
    decision = next(e for e in batch.events if e.kind == "decision")
    assert decision.detail["outcome"] == ("centre" if number.startswith("+") else "withheld")


def test_a_caller_on_the_register_is_decided_by_their_restriction(client, services, clock,
                                                                  staff, monkeypatch):
    entry_id = restrict_written_only(services, clock, staff)
    services.register.rebuild_cache(clock.now.date())
    sent = round_trips(services, monkeypatch)
    root = twiml(post(client, "/twilio/voice/incoming", incoming("07700 900123")))
    assert root.find("Dial") is None and "in writing" in ET.tostring(root, encoding="unicode")
    assert sent == ["EVALSHA", "EVALSHA"], "the check, then the restriction's own decision"
    (batch,) = recorded_batches(services)
    lookup = next(e for e in batch.events if e.kind == "lookup")
    assert lookup.detail == {"source": "cache", "failed": False, "entry_id": entry_id}
    assert read_live(services.redis, SID).outcome == "written_only"


def test_an_incomplete_routing_cache_is_not_trusted_and_the_register_decides(client, services,
                                                                             clock, staff):
    entry_id = restrict_written_only(services, clock, staff)
    services.redis.delete(CACHE_KEY)  # as during a first build, or after Redis lost its data
    root = twiml(post(client, "/twilio/voice/incoming", incoming(POI)))
    assert "in writing" in ET.tostring(root, encoding="unicode")
    (batch,) = recorded_batches(services)
    lookup = next(e for e in batch.events if e.kind == "lookup")
    assert lookup.detail == {"source": "database", "failed": False, "entry_id": entry_id}


# --- the incoming call's own WSGI handler, in front of Flask ----------------------------------


def test_the_incoming_call_url_takes_post_only(client):
    response = client.get("/twilio/voice/incoming")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


def test_an_incoming_call_url_with_a_query_string_is_signed_with_it(client, services):
    # A number configured as .../incoming?line=repairs: Twilio signs the URL as configured.
    good = post(client, "/twilio/voice/incoming", incoming(), query="line=repairs%20desk")
    assert twiml(good).find("Dial/Conference") is not None
    unsigned_query = post(client, "/twilio/voice/incoming", incoming(), query="line=x",
                          signature=sign(f"{BASE}/twilio/voice/incoming", incoming()))
    assert unsigned_query.status_code == 403


def test_the_other_voice_webhooks_still_reach_flask(client):
    response = client.get("/twilio/voice/incoming/more")
    assert response.status_code == 404
    assert twiml(post(client, "/twilio/voice/hold", {"CallSid": SID})).find("Play") is not None


# --- the emergency option on every restricted path (policy 4.1) --------------------------------

EMERGENCY_LINE = "+441632960999"
WAITING_PATHS = {"designated contact": {"designated_contact": "alex@example.org"},
                 "within a window": {"call_windows": "Tue 09:00-12:00"}}


def restrict(services, clock, **arrangements: str) -> int:
    fields, errors = parse_entry({
        "customer_ref": "QL-2", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff",
        "decided_by": "manager@example.org", "decided_on": "2025-12-15",
        "starts_on": "2026-01-01", "ends_on": "2027-12-31",
        "evidence": "written: call notes", "no_warning_reason": "threats to staff",
        **arrangements,
    })
    assert not errors, errors
    today = clock.now.astimezone(services.settings.tz).date()
    entry_id = services.register.save(fields, "manager@example.org", clock.now, today).entry_id
    services.register.rebuild_cache(today)
    return entry_id


def spoken(element) -> list[str]:
    return [" ".join("".join(say.itertext()).split()) for say in element.findall("Say")]


def path_and_query(url: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)


def assert_emergency_offer(root, then: str):
    """A one-key Gather ending with the offer, whose key goes to /menu?then=..."""
    (gather,) = root.findall("Gather")
    assert (gather.get("numDigits"), gather.get("method")) == ("1", "POST")
    assert gather.get("actionOnEmptyResult") == "false", "silence goes on to the next verb"
    assert path_and_query(gather.get("action")) == ("/twilio/voice/menu", {"then": [then]})
    assert spoken(gather)[-1] == EMERGENCY_OFFER
    return gather


@pytest.mark.parametrize("path", sorted(WAITING_PATHS))
def test_a_restricted_caller_put_through_hears_the_emergency_offer_before_joining(
        client, services, clock, staff, path):
    restrict(services, clock, **WAITING_PATHS[path])
    root = twiml(post(client, "/twilio/voice/incoming", incoming(POI)))
    assert [verb.tag for verb in root] == ["Say", "Gather", "Dial"]
    assert spoken(root) == [HOLD_GREETING]
    assert_emergency_offer(root, "wait")
    assert root.find("Dial/Conference").text == SID


def test_a_caller_not_on_the_register_is_put_through_without_the_offer(client):
    root = twiml(post(client, "/twilio/voice/incoming", incoming("+447700900555")))
    assert [verb.tag for verb in root] == ["Say", "Dial"]


def test_with_no_emergency_line_a_restricted_caller_is_put_through_without_the_offer(
        settings, services, clock, staff, more_services):
    restrict(services, clock, designated_contact="alex@example.org")
    off = create_app(services=more_services(settings.with_overrides(emergency_number="")))
    root = twiml(post(off.test_client(), "/twilio/voice/incoming", incoming(POI)))
    assert [verb.tag for verb in root] == ["Say", "Dial"]


def test_pressing_1_while_waiting_to_join_reaches_the_emergency_line_and_stops_the_queue(
        client, services, clock, staff):
    restrict(services, clock, designated_contact="alex@example.org")
    twiml(post(client, "/twilio/voice/incoming", incoming(POI)))
    root = twiml(post(client, "/twilio/voice/menu", {"CallSid": SID, "Digits": "1"},
                      query="then=wait"))
    assert root.find("Dial").text == EMERGENCY_LINE
    assert read_live(services.redis, SID).state is CallState.EMERGENCY, "nobody dials them now"
    batch = recorded_batches(services)[-1]
    assert [e.kind for e in batch.events] == ["emergency"]
    assert [e.func for e in batch.effects] == [CallerLeft.name]


@pytest.mark.parametrize("digits", ["2", "*"])
def test_another_key_while_waiting_to_join_puts_the_caller_through(client, services, digits):
    root = twiml(post(client, "/twilio/voice/menu", {"CallSid": SID, "Digits": digits},
                      query="then=wait"))
    assert [verb.tag for verb in root] == ["Say", "Dial"]
    assert spoken(root) == ["Please hold while we connect you."], "not thanked twice"
    assert root.find("Dial/Conference").text == SID


def voicemail_for(client, services, clock, staff, *, restricted: bool):
    if restricted:
        restrict(services, clock, designated_contact="alex@example.org")
    twiml(post(client, "/twilio/voice/incoming", incoming(POI)))
    return twiml(post(client, "/twilio/voice/voicemail", {"CallSid": SID},
                      query=urlencode({"call": SID})))


def test_a_restricted_caller_hears_the_emergency_offer_before_the_voicemail_tone(
        client, services, clock, staff):
    root = voicemail_for(client, services, clock, staff, restricted=True)
    assert [verb.tag for verb in root] == ["Gather", "Say", "Record", "Say", "Hangup"]
    gather = assert_emergency_offer(root, "voicemail")
    assert spoken(gather)[0] == "Sorry, nobody can take your call just now."
    assert spoken(root)[0].startswith("Please leave a message after the tone")


def test_a_caller_not_on_the_register_goes_straight_to_the_voicemail_tone(
        client, services, clock, staff):
    root = voicemail_for(client, services, clock, staff, restricted=False)
    assert [verb.tag for verb in root] == ["Say", "Record", "Say", "Hangup"]


def test_another_key_at_the_voicemail_offer_goes_on_to_the_tone(client, services):
    root = twiml(post(client, "/twilio/voice/menu", {"CallSid": SID, "Digits": "5"},
                      query="then=voicemail"))
    assert [verb.tag for verb in root] == ["Say", "Record", "Say", "Hangup"]
    assert spoken(root)[0].startswith("Please leave a message after the tone"), "no apology twice"
    assert path_and_query(root.find("Record").get("action")) == (
        "/twilio/voice/recorded", {"call": [SID]})


def test_pressing_1_at_the_voicemail_offer_reaches_the_emergency_line(client, services):
    root = twiml(post(client, "/twilio/voice/menu", {"CallSid": SID, "Digits": "1"},
                      query="then=voicemail"))
    assert root.find("Dial").text == EMERGENCY_LINE


def test_an_unknown_then_on_the_menu_is_refused(client):
    response = post(client, "/twilio/voice/menu", {"CallSid": SID, "Digits": "2"},
                    query="then=elsewhere")
    assert response.status_code == 400


def test_the_hold_twiml_holds_only_verbs_twilio_allows_in_a_wait_url(client):
    # Twilio error 13238: a waitUrl may only Say, Play, Pause and Redirect.
    root = twiml(post(client, "/twilio/voice/hold", {"CallSid": SID}))
    assert {verb.tag for verb in root} <= {"Say", "Play", "Pause", "Redirect"}
