"""Every TwiML callflow answers with, built by the twilio library in one place."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from flask import Response
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from callflow.announcement import ANNOUNCEMENT_WORD
from callflow.decision import EMERGENCY_OFFER
from callflow.recording import RECORDED_NOTICE
from store.voice_urls import voice_url

VOICE = {"voice": "Polly.Amy", "language": "en-GB"}
GOODBYE = "Thank you for calling. Goodbye."
NOBODY_FREE = "Sorry, nobody can take your call just now."
LEAVE_MESSAGE = (
    "Please leave a message after the tone, with your name, address and phone number, then "
    "press the hash key or hang up."
)
SORRY_NOBODY = f"{NOBODY_FREE} {LEAVE_MESSAGE}"
HOLD_GREETING = "Thank you for calling. Please hold while we connect you."
HOLD_AGAIN = "Please hold while we connect you."  # after a key other than 1 at the offer
SORRY_TROUBLE = "Thank you for calling. We are having some trouble with our phone system."
MENU_TIMEOUT_SECONDS = 8
OFFER_TIMEOUT_SECONDS = 5  # Twilio's default: the caller is waiting to be put through
VOICEMAIL_MAX_SECONDS = 180


def respond_text(xml: str) -> Response:
    """A TwiML response: text/xml, never cached."""
    return Response(xml, mimetype="text/xml", headers={"Cache-Control": "no-store"})


def _say(target, sentences: Iterable[str]) -> None:
    for sentence in sentences:
        target.say(sentence, **VOICE)


_SID_SLOT = "CA" + "0" * 31 + "X"  # no real CallSid: the last character is not hex


def connect(conference: str, *, base_url: str, offer_emergency: bool = False,
            greeting: str = HOLD_GREETING, recorded: bool = False,
            notice: bool = True) -> str:
    """Put the caller into their own conference to wait, with music, for a member of staff.

    With offer_emergency the caller hears the emergency option before joining: a caller waiting
    in a conference cannot press keys (Twilio refuses <Gather> in a waitUrl, error 13238).
    A recorded call's conference records from the start; with notice, the caller is told so
    before anything else.
    """
    # Rendered once per base URL, then the CallSid (validated [0-9A-Za-z]) is substituted: the
    # same document the library builds, without rebuilding its tree on every call.
    return _connect_template(base_url, offer_emergency, greeting, recorded,
                             notice).replace(_SID_SLOT, conference)


@lru_cache(maxsize=32)
def _connect_template(base_url: str, offer_emergency: bool, greeting: str, recorded: bool,
                      notice: bool) -> str:
    return _connect(_SID_SLOT, wait_url=voice_url(base_url, "/hold"),
                    action_url=voice_url(base_url, "/left", call=_SID_SLOT),
                    events_url=voice_url(base_url, "/conference", call=_SID_SLOT),
                    greeting=greeting,
                    offer_url=voice_url(base_url, "/menu", then="wait") if offer_emergency
                    else None,
                    recording_url=voice_url(base_url, CALL_RECORDING_PATH, call=_SID_SLOT)
                    if recorded else None, notice=notice)


# Below VOICE_PREFIX: Twilio's recording status callback for a recorded call's conference.
CALL_RECORDING_PATH = "/call-recording"
CONFERENCE_EVENTS = f"start end join leave {ANNOUNCEMENT_WORD}"


def _connect(conference: str, *, wait_url: str, action_url: str, events_url: str,
             greeting: str = HOLD_GREETING, offer_url: str | None = None,
             recording_url: str | None = None, notice: bool = True) -> str:
    response = VoiceResponse()
    if recording_url is not None and notice:
        _say(response, [RECORDED_NOTICE])  # before anything else the caller hears
    _say(response, [greeting])
    if offer_url is not None:
        # Any other key, or none, puts the caller through as before (/menu?then=wait).
        response.append(_offer(offer_url, [EMERGENCY_OFFER], OFFER_TIMEOUT_SECONDS))
    dial = Dial(action=action_url, method="POST")
    recording = {} if recording_url is None else {
        "record": "record-from-start", "recording_status_callback": recording_url,
        "recording_status_callback_method": "POST",
        "recording_status_callback_event": "completed absent"}
    dial.conference(
        conference, start_conference_on_enter=False, end_conference_on_exit=True, beep=False,
        wait_url=wait_url, wait_method="POST", status_callback=events_url,
        status_callback_method="POST", status_callback_event=CONFERENCE_EVENTS, **recording,
    )
    response.append(dial)
    return str(response)


def message(sentences: Iterable[str], *, offer_emergency: bool, menu_url: str) -> str:
    """Tell the caller something, offer the emergency option if on, then end the call."""
    # Many callers hear the same words (written only, closed until 8 a.m.): build each once.
    return _message(tuple(sentences), offer_emergency, menu_url)


def _offer(menu_url: str, sentences: Iterable[str], timeout: int) -> Gather:
    """One key press answering the emergency offer, posted to menu_url; silence goes on."""
    gather = Gather(num_digits=1, action=menu_url, method="POST", timeout=timeout,
                    action_on_empty_result=False)
    _say(gather, sentences)
    return gather


@lru_cache(maxsize=256)
def _message(sentences: tuple[str, ...], offer_emergency: bool, menu_url: str) -> str:
    response = VoiceResponse()
    if offer_emergency:
        response.append(_offer(menu_url, [*sentences, EMERGENCY_OFFER], MENU_TIMEOUT_SECONDS))
    else:
        _say(response, sentences)
    _say(response, [GOODBYE])
    response.hangup()
    return str(response)


def emergency(number: str, *, action_url: str) -> str:
    """Put the caller through to the emergency repairs line."""
    response = VoiceResponse()
    _say(response, ["Putting you through to our emergency repairs line now."])
    response.dial(number, action=action_url, method="POST", timeout=45)
    return str(response)


def voicemail(*, action_url: str, recording_url: str, preface: Iterable[str] = (),
              offer_url: str | None = None, apologised: bool = False) -> str:
    """Record a message for the contact centre; with offer_url, offer the emergency line first.

    apologised: the caller has just heard that nobody is free (at the emergency offer).
    """
    response = VoiceResponse()
    if offer_url is not None:
        # Before the tone: a key pressed during a <Record> would only end the recording.
        response.append(_offer(offer_url, [*preface, NOBODY_FREE, EMERGENCY_OFFER],
                               OFFER_TIMEOUT_SECONDS))
        _say(response, [LEAVE_MESSAGE])
    elif apologised:
        _say(response, [*preface, LEAVE_MESSAGE])
    else:
        _say(response, [*preface, SORRY_NOBODY])
    response.record(action=action_url, method="POST", max_length=VOICEMAIL_MAX_SECONDS,
                    finish_on_key="#", play_beep=True, recording_status_callback=recording_url,
                    recording_status_callback_method="POST")
    _say(response, ["We did not receive a message. " + GOODBYE])
    response.hangup()
    return str(response)


@lru_cache(maxsize=4)
def hold(music_url: str) -> str:
    """What a waiting caller hears; Twilio fetches it again when it ends."""
    response = VoiceResponse()
    _say(response, ["Thank you for waiting. A member of our team will be with you shortly."])
    response.play(music_url)
    return str(response)


def join_conference(conference: str) -> str:
    """The staff leg: start the caller's conference and end it when the staff member leaves."""
    response = VoiceResponse()
    dial = Dial()
    dial.conference(conference, start_conference_on_enter=True, end_conference_on_exit=True,
                    beep=False)
    response.append(dial)
    return str(response)


def say_only(sentences: Iterable[str]) -> str:
    """Speak and return (announcements played into a conference)."""
    response = VoiceResponse()
    _say(response, sentences)
    return str(response)


def goodbye(sentences: Iterable[str] = ()) -> str:
    """Say goodbye and hang up."""
    response = VoiceResponse()
    _say(response, [*sentences, GOODBYE])
    response.hangup()
    return str(response)


def hangup() -> str:
    """End the call without a word (the caller has gone or was already told)."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def trouble(*, emergency_number: str, menu_url: str, action_url: str,
            recording_url: str) -> str:
    """When callflow itself is failing: apologise, keep the emergency option, take a message."""
    response = VoiceResponse()
    if emergency_number:
        response.append(_offer(menu_url, [SORRY_TROUBLE, EMERGENCY_OFFER], OFFER_TIMEOUT_SECONDS))
    else:
        _say(response, [SORRY_TROUBLE])
    _say(response, [SORRY_NOBODY])
    response.record(action=action_url, method="POST", max_length=VOICEMAIL_MAX_SECONDS,
                    finish_on_key="#", play_beep=True, recording_status_callback=recording_url,
                    recording_status_callback_method="POST")
    _say(response, [GOODBYE])
    response.hangup()
    return str(response)
