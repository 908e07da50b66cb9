"""Twilio's side of a call: signed webhooks, a TwiML interpreter, and the REST requests it obeys.

The emulator knows nothing of how requests travel: it is given a ``post(url, params, headers)``
callable answering ``(status, content_type, body_text)``. Tests wrap Flask's test client in it;
the browser phone simulator wraps a real HTTP post. A script (a test, or a person clicking)
plays the humans: the caller presses keys, stays silent, leaves a message or hangs up; a member
of staff answers, declines or hangs up.

What it models, as Twilio documents it:

- every webhook is a form-encoded POST signed with ``X-Twilio-Signature``;
- verbs run in order; ``Gather``, ``Dial`` and ``Record`` wait for the script;
- a caller in a ``Conference`` that has not started hears the ``waitUrl`` (fetched once); its
  TwiML may hold only ``Say``, ``Play``, ``Pause`` and ``Redirect`` (Twilio error 13238), so a
  waiting caller cannot press keys;
- a participant joining a conference that has already started is connected at once;
- conference status callbacks (``participant-join``, ``conference-start``, ...) go to the
  ``statusCallback`` of the participant who created the conference, filtered by its
  ``statusCallbackEvent`` list;
- when a participant with ``endConferenceOnExit`` leaves, the conference ends and every other
  participant's ``Dial`` ends: its ``action`` is requested, or its document continues;
- when a call ends, its status callback is posted with ``CallStatus`` and ``CallDuration``.

Simplifications: only POST is spoken; the ``initiated`` call progress event is not sent; a
``waitUrl`` or ``Play`` outside ``base_url`` is recorded, not fetched.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, urljoin, urlsplit

from twilio.request_validator import RequestValidator

Post = Callable[[str, dict[str, str], dict[str, str]], tuple[int, str, str]]

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
INCOMING_PATH = "/twilio/voice/incoming"
STATUS_PATH = "/twilio/voice/status"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_NUMBER = "+441632960000"
# What Twilio plays to a conference's waiting participants when no waitUrl is given.
DEFAULT_WAIT_URL = "http://twimlets.com/holdmusic?Bucket=com.twilio.music.classical"
TWIML_TYPES = frozenset({"text/xml", "application/xml"})
WAIT_URL_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})  # anything else: error 13238
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# The script says "answered" for a dialled party who picked up; Twilio reports that as completed.
DIAL_OUTCOMES = {"answered": "completed", "completed": "completed", "no-answer": "no-answer",
                 "busy": "busy", "failed": "failed", "canceled": "canceled"}
STAFF_DECLINES = frozenset({"no-answer", "busy", "failed", "canceled"})
# A conference statusCallbackEvent word, by the StatusCallbackEvent value it lets through.
CONFERENCE_EVENT_WORDS = {"conference-start": "start", "conference-end": "end",
                          "participant-join": "join", "participant-leave": "leave",
                          "announcement-end": "announcement",
                          "announcement-fail": "announcement"}
# Twilio's ReasonParticipantLeft, by how the emulator saw a participant go.
LEFT_HUNG_UP = "participant_hung_up"
LEFT_UPDATED_VIA_API = "participant_updated_via_api"
LEFT_WITH_MODERATOR = "moderator_ended_conference"
LEFT_CONFERENCE_ENDED_VIA_API = "conference_ended_via_api"
# What a machine answers as (AnsweredBy) for a leg placed with MachineDetection.
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence",
                             "machine_end_other", "fax"})
REST_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-fA-F]{32})/(?P<rest>.+)\.json$")

_STOP = object()  # a verb handler's answer: this document is done (waiting, or replaced)


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() == "true"


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _heard(verb: ET.Element) -> str:
    """The transcript entry for a verb the party hears, or "" for one they do not."""
    if verb.tag == "Say":
        return f"say: {_text(verb)}"
    if verb.tag == "Play":
        return f"play: {_text(verb) or 'digits ' + verb.get('digits', '')}"
    if verb.tag == "Pause":
        return f"pause: {verb.get('length', '1')}s"
    return ""


def _party(leg: Leg) -> str:
    """Who a leg's party is to the others in a conference: a caller's number, a staff target."""
    return leg.from_number if leg.direction == "inbound" else leg.to_number


class ScriptError(RuntimeError):
    """The script asked for something the call cannot do now (e.g. press keys while ringing)."""


@dataclass(frozen=True)
class Exchange:
    """One webhook request the emulator made, and the answer it got."""

    url: str
    params: dict[str, str]
    status: int
    content_type: str
    body: str

    @property
    def ok(self) -> bool:
        """Whether the answer was 2xx."""
        return 200 <= self.status < 300

    @property
    def path(self) -> str:
        """The URL's path, without the query."""
        return urlsplit(self.url).path

    def twiml(self) -> ET.Element | None:
        """The answer as a TwiML <Response> element, or None if it is not valid TwiML."""
        if self.status != 200 or self.content_type.split(";")[0].strip() not in TWIML_TYPES:
            return None
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        return root if root.tag == "Response" else None


@dataclass(frozen=True)
class Recording:
    """A message a caller left with <Record>."""

    sid: str
    url: str
    duration_seconds: int


@dataclass
class Participant:
    """A call in a conference, with the flags its <Conference> noun gave it."""

    leg: Leg
    start_on_enter: bool
    end_on_exit: bool
    muted: bool = False
    hold: bool = False
    coaching: bool = False  # heard by call_sid_to_coach alone (a supervisor coaching an agent)
    call_sid_to_coach: str = ""


@dataclass
class Conference:
    """A named conference; its status callback is the creating participant's."""

    name: str
    sid: str
    status_callback: str = ""
    events: frozenset[str] = frozenset()
    participants: dict[str, Participant] = field(default_factory=dict)
    started: bool = False
    ended: bool = False
    sequence: int = 0
    # record="record-from-start" on the creator's noun, and its recordingStatusCallback.
    record: bool = False
    recording_callback: str = ""
    recording_events: frozenset[str] = frozenset()
    started_at: float | None = None


@dataclass
class _Pending:
    """A verb waiting for the script, and the rest of its document."""

    kind: str  # gather | dial | conference | record
    verb: ET.Element
    rest: list[ET.Element]
    url: str
    conference: Conference | None = None


class Leg:
    """One call as Twilio runs it: a TwiML interpreter and a transcript of what its party hears."""

    direction = "inbound"

    def __init__(self, emulator: TwilioEmulator, sid: str, from_number: str, to_number: str):
        self.emulator = emulator
        self.sid = sid
        self.from_number = from_number
        self.to_number = to_number
        self.status = "queued"
        self.transcript: list[str] = []
        self.documents: list[tuple[str, ET.Element]] = []
        self.recordings: list[Recording] = []
        self.answered_at: float | None = None
        self._pending: _Pending | None = None

    # -- what a script can ask about -------------------------------------------------------

    @property
    def over(self) -> bool:
        """Whether the call has ended."""
        return self.status in FINAL_STATUSES

    @property
    def waiting_for(self) -> str | None:
        """What the call waits on: gather, dial, conference, record, or None."""
        return self._pending.kind if self._pending else None

    @property
    def conference(self) -> str | None:
        """The name of the conference this call is in, if any."""
        if self._pending and self._pending.conference:
            return self._pending.conference.name
        return None

    @property
    def twiml(self) -> ET.Element | None:
        """The last TwiML document this call ran."""
        return self.documents[-1][1] if self.documents else None

    def document(self, path: str) -> ET.Element:
        """The last TwiML document fetched from a URL whose path ends with `path`."""
        for url, root in reversed(self.documents):
            if urlsplit(url).path.endswith(path):
                return root
        raise LookupError(f"{self.sid} fetched no TwiML from {path}")

    def said(self) -> list[str]:
        """Everything spoken to this party, in order."""
        return [entry[5:] for entry in self.transcript if entry.startswith("say: ")]

    def heard(self, words: str) -> bool:
        """Whether any transcript entry contains `words`."""
        return any(words in entry for entry in self.transcript)

    # -- what the script does --------------------------------------------------------------

    def press(self, digits: str) -> None:
        """Key presses answering the <Gather> the call waits on."""
        with self.emulator.step():
            pending = self._expect("gather")
            finish = pending.verb.get("finishOnKey", "#")
            entered, finished_on = digits, ""
            if finish and digits.endswith(finish):
                entered, finished_on = digits[: -len(finish)], finish
            limit = int(pending.verb.get("numDigits") or 0)
            if limit:
                entered = entered[:limit]
            self.transcript.append(f"pressed: {digits}")
            self._pending = None
            extra = {"Digits": entered}
            if finished_on:
                extra["FinishedOnKey"] = finished_on
            self._follow(self._resolve(pending.url, pending.verb.get("action") or pending.url),
                         pending.verb.get("method", "POST"), extra)

    def silence(self) -> None:
        """Say and press nothing until the <Gather> or <Record> times out."""
        with self.emulator.step():
            pending = self._expect("gather", "record")
            self._pending = None
            self.transcript.append("silence")
            if pending.kind == "gather" and _flag(pending.verb.get("actionOnEmptyResult"), False):
                self._follow(self._resolve(pending.url, pending.verb.get("action") or pending.url),
                             pending.verb.get("method", "POST"), {"Digits": ""})
            else:
                # An empty <Record> does not request its action; the document goes on.
                self._execute(pending.rest, pending.url)

    def finish_dial(self, outcome: str = "answered", duration_seconds: int = 30) -> None:
        """The party a <Dial><Number> rang: answered (and later hung up), no-answer, busy..."""
        with self.emulator.step():
            pending = self._expect("dial")
            try:
                status = DIAL_OUTCOMES[outcome]
            except KeyError:
                raise ScriptError(f"unknown dial outcome {outcome!r}") from None
            self._pending = None
            self.transcript.append(f"dial ended: {status}")
            action = pending.verb.get("action")
            if not action:
                self._execute(pending.rest, pending.url)
                return
            self._follow(self._resolve(pending.url, action), pending.verb.get("method", "POST"), {
                "DialCallStatus": status,
                "DialCallSid": new_sid("CA"),
                "DialCallDuration": str(duration_seconds if status == "completed" else 0),
            })

    def leave_message(self, duration_seconds: int = 10, finished_by: str = "#") -> Recording:
        """Speak into the <Record>, then press its finish key (or "hangup" to hang up)."""
        with self.emulator.step():
            pending = self._expect("record")
            limit = int(pending.verb.get("maxLength") or 3600)
            duration = max(1, min(duration_seconds, limit))
            sid = new_sid("RE")
            recording = Recording(sid, f"https://api.twilio.com/{API_VERSION}/Accounts/"
                                       f"{self.emulator.account_sid}/Recordings/{sid}", duration)
            self.recordings.append(recording)
            self.transcript.append(f"message: {duration}s")
            self._pending = None
            hung_up = finished_by == "hangup"
            details = {"RecordingSid": sid, "RecordingUrl": recording.url,
                       "RecordingDuration": str(duration)}
            action = self._resolve(pending.url, pending.verb.get("action") or pending.url)
            # After a hang-up Twilio still requests the action, but nobody hears its TwiML.
            extra = {**details, "Digits": finished_by}
            if hung_up:
                extra["CallStatus"] = "completed"
            root = self._fetch(action, pending.verb.get("method", "POST"), extra)
            callback = pending.verb.get("recordingStatusCallback")
            if callback:
                self.emulator.callback(self._resolve(pending.url, callback), {
                    "AccountSid": self.emulator.account_sid, "CallSid": self.sid, **details,
                    "RecordingStatus": "completed", "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                }, pending.verb.get("recordingStatusCallbackMethod", "POST"))
            if hung_up:
                self._end("completed")
            elif root is not None:
                self._run(action, root)
            return recording

    def hang_up(self) -> None:
        """This party hangs up."""
        with self.emulator.step():
            if self.over:
                raise ScriptError(f"{self.sid} has already ended ({self.status})")
            self._end("completed")

    # -- the interpreter -------------------------------------------------------------------

    def _expect(self, *kinds: str) -> _Pending:
        if self._pending is None or self._pending.kind not in kinds:
            now = self._pending.kind if self._pending else ("over" if self.over else self.status)
            raise ScriptError(f"{self.sid} is not waiting on {' or '.join(kinds)} (it is {now})")
        return self._pending

    def _resolve(self, base: str, url: str) -> str:
        return urljoin(base, url.strip())

    def _params(self, **extra: str) -> dict[str, str]:
        params = {
            "AccountSid": self.emulator.account_sid, "ApiVersion": API_VERSION,
            "CallSid": self.sid, "CallStatus": self.status, "Direction": self.direction,
            "From": self.from_number, "To": self.to_number,
            "Caller": self.from_number, "Called": self.to_number,
        }
        params.update(extra)
        return params

    def _fetch(self, url: str, method: str, extra: Mapping[str, str]) -> ET.Element | None:
        """Request TwiML for this call; a failure ends it as Twilio's application error does."""
        exchange = self.emulator.request(url, self._params(**extra), method)
        root = exchange.twiml()
        if root is None:
            self._application_error(exchange)
        return root

    def _application_error(self, exchange: Exchange) -> None:
        self.emulator.problems.append(
            f"{self.sid}: no valid TwiML from {exchange.url} (HTTP {exchange.status} "
            f"{exchange.content_type}): {exchange.body[:200]}")
        self.transcript.append("say: We are sorry, an application error has occurred. Goodbye.")
        self._end("completed")

    def _follow(self, url: str, method: str, extra: Mapping[str, str]) -> None:
        root = self._fetch(url, method, extra)
        if root is not None:
            self._run(url, root)

    def _run(self, url: str, root: ET.Element) -> None:
        if self.answered_at is None:
            self.answered_at = self.emulator.clock()
        if self.status in ("queued", "ringing"):
            self.status = "in-progress"
        self.documents.append((url, root))
        self._execute(list(root), url)

    def _execute(self, verbs: Sequence[ET.Element], url: str) -> None:
        remaining = list(verbs)
        while remaining:
            if self.over:
                return
            verb = remaining.pop(0)
            handler = _VERBS.get(verb.tag)
            if handler is None:
                self.emulator.problems.append(f"{self.sid}: unsupported verb <{verb.tag}>")
                continue
            if handler(self, verb, remaining, url) is _STOP:
                return
        if not self.over and self._pending is None:
            self._end("completed")  # a document that runs out hangs up

    def _speak(self, verb: ET.Element) -> None:
        entry = _heard(verb)
        if entry:
            self.transcript.append(entry)

    def _verb_speak(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        self._speak(verb)
        return None

    def _verb_gather(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        for child in verb:
            self._speak(child)
        self._pending = _Pending("gather", verb, rest, url)
        return _STOP

    def _verb_dial(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        nouns = list(verb)
        conference = next((noun for noun in nouns if noun.tag == "Conference"), None)
        if conference is not None:
            self._join_conference(verb, conference, rest, url)
            return _STOP
        targets = [self._dial_target(noun) for noun in nouns] or [_text(verb)]
        for target in targets:
            self.transcript.append(f"dial: {target}")
        self._pending = _Pending("dial", verb, rest, url)
        return _STOP

    @staticmethod
    def _dial_target(noun: ET.Element) -> str:
        if noun.tag == "Client":
            identity = noun.find("Identity")
            return "client:" + _text(identity if identity is not None else noun)
        return _text(noun)

    def _join_conference(self, dial: ET.Element, noun: ET.Element, rest: list[ET.Element],
                         url: str) -> None:
        emulator = self.emulator
        conference = emulator.conference_named(_text(noun), noun, url)
        self._pending = _Pending("conference", dial, rest, url, conference)
        participant = Participant(self, _flag(noun.get("startConferenceOnEnter"), True),
                                  _flag(noun.get("endConferenceOnExit"), False),
                                  muted=_flag(noun.get("muted"), False))
        self.transcript.append(f"conference: {conference.name}"
                               + ("" if conference.started or participant.start_on_enter
                                  else " (waiting)"))
        emulator.add_participant(conference, participant)
        if not conference.started and not self.over:
            self._wait_music(noun, url, conference)

    def _wait_music(self, noun: ET.Element, url: str, conference: Conference) -> None:
        """Fetch the waitUrl once and note what it plays (Twilio loops it; once is enough)."""
        wait_url = noun.get("waitUrl", DEFAULT_WAIT_URL)
        if not wait_url:
            return
        wait_url = self._resolve(url, wait_url)
        if not wait_url.startswith(self.emulator.base_url):
            self.transcript.append(f"play: {wait_url}")
            return
        exchange = self.emulator.request(
            wait_url, self._params(ConferenceSid=conference.sid,
                                   FriendlyName=conference.name),
            noun.get("waitMethod", "POST"))
        root = exchange.twiml()
        if root is None:
            self.emulator.problems.append(
                f"{self.sid}: wait music at {wait_url} answered HTTP {exchange.status}")
            return
        for verb in root:
            if verb.tag not in WAIT_URL_VERBS:
                self.emulator.problems.append(
                    f"{self.sid}: <{verb.tag}> in the waitUrl TwiML at {wait_url} (Twilio "
                    "error 13238: only Say, Play, Pause and Redirect are allowed)")
                continue
            self._speak(verb)

    def _conference_over(self, conference: Conference) -> None:
        """The conference this call was in ended: its <Dial> ends and the call moves on."""
        pending = self._pending
        if self.over or pending is None or pending.conference is not conference:
            return
        self._pending = None
        self.transcript.append(f"conference ended: {conference.name}")
        action = pending.verb.get("action")
        if not action:
            self._execute(pending.rest, pending.url)
            return
        self._follow(self._resolve(pending.url, action), pending.verb.get("method", "POST"), {
            "DialCallStatus": "answered", "ConferenceSid": conference.sid,
        })

    def _verb_record(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        if _flag(verb.get("playBeep"), True):
            self.transcript.append("beep")
        self._pending = _Pending("record", verb, rest, url)
        return _STOP

    def _verb_redirect(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        self._follow(self._resolve(url, _text(verb)), verb.get("method", "POST"), {})
        return _STOP

    def _verb_hangup(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        self.transcript.append("hangup")
        self._end("completed")
        return _STOP

    def _verb_reject(self, verb: ET.Element, rest: list[ET.Element], url: str) -> object:
        self.transcript.append("reject")
        self._end("busy" if verb.get("reason") == "busy" else "no-answer")
        return _STOP

    # -- ending, and what the REST API does to a call --------------------------------------

    def _duration(self) -> int:
        if self.answered_at is None:
            return 0
        return max(0, int(self.emulator.clock() - self.answered_at))

    def _end(self, status: str) -> None:
        if self.over:
            return
        pending, self._pending = self._pending, None
        duration = self._duration()
        self.status = status
        self._post_status(status, CallDuration=str(duration))
        if pending is not None and pending.conference is not None:
            self.emulator.remove_participant(pending.conference, self)

    def _post_status(self, status: str, **extra: str) -> None:
        """The call's status callback; the caller's is the number's, set in the console."""
        raise NotImplementedError

    def _leave_current(self) -> None:
        """Drop whatever the call waits on, without ending it (a REST redirect)."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.conference is not None:
            self.emulator.remove_participant(pending.conference, self, LEFT_UPDATED_VIA_API)

    def _redirected(self, url: str, method: str) -> None:
        if self.over:
            self.emulator.problems.append(f"{self.sid}: redirected after it ended")
            return
        self._leave_current()
        self.transcript.append(f"redirected: {urlsplit(url).path}")
        self._follow(url, method, {})

    def _announce(self, url: str, method: str, conference: Conference) -> None:
        exchange = self.emulator.request(url, {
            "AccountSid": self.emulator.account_sid, "ConferenceSid": conference.sid,
            "CallSid": self.sid,
        }, method)
        root = exchange.twiml()
        participant = conference.participants.get(self.sid)
        if root is None:
            self.emulator.problems.append(
                f"{self.sid}: announcement at {url} answered HTTP {exchange.status}")
            self.emulator._conference_event(
                conference, "announcement-fail", participant, AnnounceUrl=url,
                ReasonAnnouncementFailed=f"The announcement URL answered HTTP {exchange.status}")
            return
        for verb in root:
            entry = _heard(verb)
            if entry:
                self.transcript.append("announcement: " + entry.removeprefix("say: "))
        self.emulator._conference_event(conference, "announcement-end", participant,
                                        AnnounceUrl=url)


_VERBS: dict[str, Callable[[Leg, ET.Element, list[ET.Element], str], object]] = {
    "Say": Leg._verb_speak,
    "Play": Leg._verb_speak,
    "Pause": Leg._verb_speak,
    "Gather": Leg._verb_gather,
    "Dial": Leg._verb_dial,
    "Record": Leg._verb_record,
    "Redirect": Leg._verb_redirect,
    "Hangup": Leg._verb_hangup,
    "Reject": Leg._verb_reject,
}


class SimulatedCall(Leg):
    """A caller ringing the contact centre's number."""

    direction = "inbound"

    def _post_status(self, status: str, **extra: str) -> None:
        emulator = self.emulator
        if emulator.status_callback_url:
            emulator.callback(emulator.status_callback_url, self._params(
                CallStatus=status, Timestamp=emulator.timestamp(),
                CallbackSource="call-progress-events", **extra))

    @property
    def staff_legs(self) -> list[StaffLeg]:
        """Calls the app placed to staff for this caller (by call= in their URL)."""
        return [leg for leg in self.emulator.staff_legs if leg.for_call == self.sid]


class StaffLeg(Leg):
    """A call the app placed through the REST API (a member of staff being rung)."""

    direction = "outbound-api"

    def __init__(self, emulator: TwilioEmulator, *, to_number: str, from_number: str, url: str,
                 method: str, twiml: str, status_callback: str, status_callback_method: str,
                 events: frozenset[str], timeout: int, machine_detection: str = ""):
        super().__init__(emulator, new_sid("CA"), from_number, to_number)
        self.machine_detection = machine_detection  # Calls.create's MachineDetection
        self.answered_by = ""  # AnsweredBy, once machine detection has run
        self.url = url
        self.method = method
        self.inline_twiml = twiml
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method
        self.events = events
        self.timeout = timeout
        self.query = {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
        self._sequence = 0

    @property
    def for_call(self) -> str | None:
        """The caller's CallSid this leg was placed for (its URL's call=)."""
        return self.query.get("call")

    @property
    def staff_id(self) -> int | None:
        """The member of staff being rung (its URL's staff=)."""
        staff = self.query.get("staff", "")
        return int(staff) if staff.isdigit() else None

    @property
    def ringing(self) -> bool:
        """Whether the leg rings and nobody has picked up."""
        return self.status == "ringing"

    def __repr__(self) -> str:
        return f"<StaffLeg {self.to_number} for {self.for_call} {self.status}>"

    def _ring(self) -> None:
        self.status = "ringing"
        if "ringing" in self.events:
            self._post_status("ringing")

    def answer(self) -> None:
        """The member of staff picks up: fetch the leg's TwiML and run it."""
        self._answered("human")

    def answer_by_machine(self, answered_by: str = "machine_start") -> None:
        """An answering machine (or fax) picks up: with MachineDetection, Twilio says so in
        AnsweredBy; without it, the machine is taken for a person."""
        if answered_by not in MACHINE_ANSWERS:
            raise ScriptError(f"{answered_by!r} is not a machine's AnsweredBy")
        self._answered(answered_by)
        if not self.over:
            self.transcript.append("machine: recording whatever it hears")

    def _answered(self, answered_by: str) -> None:
        with self.emulator.step():
            if not self.ringing:
                raise ScriptError(f"{self!r} is not ringing")
            self.status = "in-progress"
            self.answered_at = self.emulator.clock()
            extra = {}
            if self.machine_detection:
                self.answered_by = answered_by
                extra["AnsweredBy"] = answered_by
            if self.inline_twiml:
                root = ET.fromstring(self.inline_twiml)
            else:
                root = self._fetch(self.url, self.method, extra)
            if root is None:
                return
            if "answered" in self.events:
                self._post_status("in-progress")
            self._run(self.url, root)

    def decline(self, status: str = "no-answer") -> None:
        """The leg is not answered: no-answer, busy, failed (or canceled)."""
        with self.emulator.step():
            if status not in STAFF_DECLINES:
                raise ScriptError(f"a leg cannot be declined as {status!r}")
            if not self.ringing:
                raise ScriptError(f"{self!r} is not ringing")
            self._end(status)

    def _post_status(self, status: str, **extra: str) -> None:
        final = status in FINAL_STATUSES
        if not self.status_callback or (final and "completed" not in self.events):
            return
        self._sequence += 1
        if self.answered_by:
            extra = {**extra, "AnsweredBy": self.answered_by}
        self.emulator.callback(self.status_callback, self._params(
            CallStatus=status, Timestamp=self.emulator.timestamp(),
            CallbackSource="call-progress-events", SequenceNumber=str(self._sequence),
            **(extra if final else {})), self.status_callback_method)


class TwilioEmulator:
    """Plays Twilio for one phone number: inbound calls, staff legs, conferences, REST requests."""

    def __init__(self, base_url: str, auth_token: str, post: Post, *,
                 account_sid: str = DEFAULT_ACCOUNT_SID, phone_number: str = DEFAULT_NUMBER,
                 voice_url: str | None = None, status_callback_url: str | None = None,
                 fallback_url: str | None = None, clock: Callable[[], float] = time.time,
                 on_idle: Callable[[], None] | None = None):
        """`on_idle` runs after each outermost script step (tests run their workers there)."""
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.phone_number = phone_number
        self.voice_url = voice_url or self.base_url + INCOMING_PATH
        self.status_callback_url = (self.base_url + STATUS_PATH if status_callback_url is None
                                    else status_callback_url)
        self.fallback_url = fallback_url
        self.clock = clock
        self.on_idle = on_idle
        self._validator = RequestValidator(auth_token)
        self._post = post
        self.calls: dict[str, SimulatedCall] = {}
        self.staff_legs: list[StaffLeg] = []
        self.conferences: dict[str, Conference] = {}
        self.conference_recordings: list[str] = []  # RecordingSids of recorded conferences
        self.exchanges: list[Exchange] = []
        self.problems: list[str] = []
        self.unmatched_rest: list[str] = []
        self._lock = threading.RLock()
        self._depth = 0

    # -- the script's entry points ---------------------------------------------------------

    @contextmanager
    def step(self) -> Iterator[None]:
        """One script action; `on_idle` runs when the outermost one finishes without error."""
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            outermost = self._depth == 0
        if outermost and self.on_idle is not None:
            self.on_idle()

    def place_call(self, from_number: str, to_number: str | None = None,
                   sid: str | None = None) -> SimulatedCall:
        """A caller rings the number: Twilio requests the voice URL and runs the TwiML.

        sid is the call's CallSid when the caller has chosen it (so that it can be known before
        the first webhook is answered); a new one otherwise.
        """
        with self.step():
            call = SimulatedCall(self, sid or new_sid("CA"), from_number,
                                 to_number or self.phone_number)
            call.status = "ringing"
            self.calls[call.sid] = call
            exchange = self.request(self.voice_url, call._params(), "POST")
            root = exchange.twiml()
            url = self.voice_url
            if root is None and self.fallback_url:
                self.problems.append(f"{call.sid}: voice URL answered HTTP {exchange.status}; "
                                     "using the fallback URL")
                url = self.fallback_url
                exchange = self.request(url, call._params(ErrorCode="11200",
                                                          ErrorUrl=self.voice_url), "POST")
                root = exchange.twiml()
            if root is None:
                call._application_error(exchange)
            else:
                call._run(url, root)
            return call

    def call(self, sid: str) -> SimulatedCall:
        """An inbound call by its CallSid."""
        return self.calls[sid]

    def legs(self, *, call_sid: str | None = None, staff_id: int | None = None,
             ringing: bool | None = None) -> list[StaffLeg]:
        """Staff legs, filtered by the caller they were placed for, staff id, ringing or not."""
        return [leg for leg in self.staff_legs
                if (call_sid is None or leg.for_call == call_sid)
                and (staff_id is None or leg.staff_id == staff_id)
                and (ringing is None or leg.ringing == ringing)]

    def replay(self, exchange: Exchange) -> Exchange:
        """Send an earlier request again, signed afresh (Twilio retries, duplicates)."""
        with self.step():
            return self.request(exchange.url, dict(exchange.params), "POST")

    def post_signed(self, url: str, params: Mapping[str, str]) -> Exchange:
        """Post any signed webhook (for scripts that play a callback by hand)."""
        with self.step():
            return self.request(url, dict(params), "POST")

    # -- HTTP --------------------------------------------------------------------------------

    def request(self, url: str, params: dict[str, str], method: str = "POST") -> Exchange:
        """Sign and post one webhook, as Twilio does, and keep the exchange."""
        if method.upper() != "POST":
            self.problems.append(f"{url}: method {method} requested; the emulator only POSTs")
        headers = {SIGNATURE_HEADER: self._validator.compute_signature(url, params)}
        try:
            status, content_type, body = self._post(url, params, headers)
        except Exception as error:  # a transport failure: Twilio calls it error 11200
            status, content_type, body = 0, "", f"{type(error).__name__}: {error}"
        exchange = Exchange(url, dict(params), status, content_type or "", body or "")
        self.exchanges.append(exchange)
        return exchange

    def callback(self, url: str, params: dict[str, str], method: str = "POST") -> Exchange:
        """A status callback: any answer but 2xx is a problem (Twilio logs a warning)."""
        exchange = self.request(url, params, method)
        if not exchange.ok:
            self.problems.append(f"callback {url} answered HTTP {exchange.status}")
        return exchange

    def timestamp(self) -> str:
        """Now, as Twilio's Timestamp parameter writes it (RFC 2822)."""
        return formatdate(self.clock(), usegmt=True)

    # -- conferences -------------------------------------------------------------------------

    def conference_named(self, name: str, noun: ET.Element, url: str) -> Conference:
        """The live conference of that name, created with this noun's callback if new."""
        existing = self.conferences.get(name)
        if existing is not None and not existing.ended:
            return existing
        callback = noun.get("statusCallback", "")
        words = noun.get("statusCallbackEvent", "start end" if callback else "")
        conference = Conference(name, new_sid("CF"),
                                urljoin(url, callback) if callback else "",
                                frozenset(words.split()))
        if noun.get("record") == "record-from-start":
            recording_callback = noun.get("recordingStatusCallback", "")
            conference.record = True
            conference.recording_callback = (urljoin(url, recording_callback)
                                             if recording_callback else "")
            conference.recording_events = frozenset(
                noun.get("recordingStatusCallbackEvent", "completed").split())
        self.conferences[name] = conference
        return conference

    def add_participant(self, conference: Conference, participant: Participant) -> None:
        """A call joins; one with startConferenceOnEnter starts a waiting conference."""
        conference.participants[participant.leg.sid] = participant
        self._conference_event(conference, "participant-join", participant)
        if conference.started:
            for other in conference.participants.values():
                if other.leg is not participant.leg:
                    other.leg.transcript.append(f"connected: {_party(participant.leg)}")
                    participant.leg.transcript.append(f"connected: {_party(other.leg)}")
        elif participant.start_on_enter:
            conference.started = True
            conference.started_at = self.clock()
            self._conference_event(conference, "conference-start")
            for other in conference.participants.values():
                if other.leg is not participant.leg:
                    other.leg.transcript.append(f"connected: {participant.leg.to_number}")
                    participant.leg.transcript.append(f"connected: {other.leg.from_number}")

    def remove_participant(self, conference: Conference, leg: Leg,
                           reason: str = LEFT_HUNG_UP) -> None:
        """A call leaves; endConferenceOnExit (or an empty room) ends a started conference."""
        participant = conference.participants.pop(leg.sid, None)
        if participant is None:
            return
        self._conference_event(conference, "participant-leave", participant,
                               ReasonParticipantLeft=reason,
                               ParticipantCallStatus="completed" if leg.over else "in-progress")
        if participant.end_on_exit or not conference.participants:
            self._end_conference(conference, leg)

    def _end_conference(self, conference: Conference, ended_by: Leg | None) -> None:
        if conference.ended:
            return
        conference.ended = True
        if self.conferences.get(conference.name) is conference:
            del self.conferences[conference.name]
        others = list(conference.participants.values())
        conference.participants.clear()
        why = LEFT_WITH_MODERATOR if ended_by is not None else LEFT_CONFERENCE_ENDED_VIA_API
        for other in others:
            self._conference_event(conference, "participant-leave", other,
                                   ReasonParticipantLeft=why, ParticipantCallStatus="completed")
        if conference.started:
            extra = {"ReasonConferenceEnded": "participant-with-end-conference-on-exit-left"}
            if ended_by is not None:
                extra["CallSidEndingConference"] = ended_by.sid
            self._conference_event(conference, "conference-end", **extra)
            self._recording_ready(conference)
        for other in others:
            other.leg._conference_over(conference)

    def _recording_ready(self, conference: Conference) -> None:
        """A recorded conference ended: its recordingStatusCallback says the recording is ready."""
        if not conference.record or not conference.recording_callback \
                or "completed" not in conference.recording_events:
            return
        sid = new_sid("RE")
        duration = max(0, int(self.clock() - (conference.started_at or self.clock())))
        self.conference_recordings.append(sid)
        self.callback(conference.recording_callback, {
            "AccountSid": self.account_sid, "ConferenceSid": conference.sid,
            "RecordingSid": sid, "RecordingStatus": "completed",
            "RecordingUrl": f"https://api.twilio.com/{API_VERSION}/Accounts/{self.account_sid}"
                            f"/Recordings/{sid}",
            "RecordingDuration": str(duration), "RecordingChannels": "1",
            "RecordingSource": "Conference", "RecordingStartTime": self.timestamp(),
        })

    def _conference_event(self, conference: Conference, event: str,
                          participant: Participant | None = None, **extra: str) -> None:
        if not conference.status_callback or CONFERENCE_EVENT_WORDS[event] not in conference.events:
            return
        conference.sequence += 1
        params = {
            "AccountSid": self.account_sid, "ConferenceSid": conference.sid,
            "FriendlyName": conference.name, "StatusCallbackEvent": event,
            "SequenceNumber": str(conference.sequence), "Timestamp": self.timestamp(),
        }
        if participant is not None:
            params.update({
                "CallSid": participant.leg.sid, "Muted": str(participant.muted).lower(),
                "Hold": str(participant.hold).lower(),
                "Coaching": str(participant.coaching).lower(),
                "EndConferenceOnExit": str(participant.end_on_exit).lower(),
                "StartConferenceOnEnter": str(participant.start_on_enter).lower(),
            })
        params.update(extra)
        self.callback(conference.status_callback, params)

    # -- the REST API, as the app's workers call it ------------------------------------------

    def apply_rest(self, method: str, path: str,
                   params: Mapping[str, str | Sequence[str]]) -> str:
        """Do what one REST request asked Twilio to do; returns a line saying what happened."""
        with self.step():
            match = REST_PATH.match(path)
            if method.upper() != "POST" or match is None:
                return f"ignored {method} {path}"
            values = {key: [value] if isinstance(value, str) else list(value)
                      for key, value in params.items()}

            def one(key: str, default: str = "") -> str:
                found = values.get(key)
                return found[0] if found else default

            parts = match["rest"].split("/")
            if parts == ["Calls"]:
                return self._create_call(values, one)
            if len(parts) == 2 and parts[0] == "Calls":
                return self._update_call(parts[1], one)
            if len(parts) == 2 and parts[0] == "Conferences":
                conference = self._conference_by_sid(parts[1])
                if conference is not None and one("Status") == "completed":
                    self._end_conference(conference, None)
                    return f"ended conference {conference.name}"
            if len(parts) == 4 and parts[0] == "Conferences" and parts[2] == "Participants":
                return self._update_participant(parts[1], parts[3], one)
            if len(parts) == 3 and parts[0] == "Conferences" and parts[2] == "Participants":
                return self._add_participant(parts[1], values, one)
            self.unmatched_rest.append(f"{method} {path}")
            return f"unmatched {method} {path}"

    def _create_call(self, values: dict[str, list[str]], one: Callable[..., str]) -> str:
        if not one("Url") and not one("Twiml"):
            self.problems.append("Calls.create without Url or Twiml")
            return "refused: no Url or Twiml"
        leg = StaffLeg(
            self, to_number=one("To"), from_number=one("From"), url=one("Url"),
            method=one("Method", "POST"), twiml=one("Twiml"),
            status_callback=one("StatusCallback"),
            status_callback_method=one("StatusCallbackMethod", "POST"),
            events=frozenset(values.get("StatusCallbackEvent") or ["completed"]),
            timeout=int(one("Timeout", "60") or 60),
            machine_detection=one("MachineDetection"),
        )
        self.staff_legs.append(leg)
        leg._ring()
        return f"ringing {leg.to_number}"

    def _find_leg(self, sid: str) -> Leg | None:
        return self.calls.get(sid) or next((leg for leg in self.staff_legs if leg.sid == sid),
                                           None)

    def _update_call(self, sid: str, one: Callable[..., str]) -> str:
        leg = self._find_leg(sid)
        if leg is None:
            self.unmatched_rest.append(f"update of unknown call {sid}")
            return f"unknown call {sid}"
        if one("Url") or one("Twiml"):
            if one("Twiml"):
                leg._leave_current()
                leg._run(leg.documents[-1][0] if leg.documents else "", ET.fromstring(one("Twiml")))
            else:
                leg._redirected(one("Url"), one("Method", "POST"))
            return f"redirected {sid}"
        status = one("Status")
        if status in ("completed", "canceled"):
            leg._end("canceled" if leg.status in ("queued", "ringing") else "completed")
            return f"ended {sid}"
        return f"nothing to do for {sid}"

    def _conference_by_sid(self, sid: str) -> Conference | None:
        return next((c for c in self.conferences.values() if c.sid == sid), None)

    def _update_participant(self, conference_sid: str, call_sid: str,
                            one: Callable[..., str]) -> str:
        conference = self._conference_by_sid(conference_sid)
        participant = conference.participants.get(call_sid) if conference else None
        if conference is None or participant is None:
            self.unmatched_rest.append(f"participant {call_sid} of {conference_sid}")
            return f"no participant {call_sid} in {conference_sid}"
        if one("Muted"):
            participant.muted = one("Muted") == "true"
        if one("Hold"):
            participant.hold = one("Hold") == "true"
        if one("Coaching") or one("CallSidToCoach"):
            # Twilio: Coaching defaults to true when CallSidToCoach is given, else to false.
            participant.call_sid_to_coach = one("CallSidToCoach")
            participant.coaching = _flag(one("Coaching") or None,
                                         bool(participant.call_sid_to_coach))
        if one("AnnounceUrl"):
            participant.leg._announce(one("AnnounceUrl"), one("AnnounceMethod", "POST"),
                                      conference)
            return f"announced to {call_sid}"
        return f"updated {call_sid}"

    def _add_participant(self, conference_sid: str, values: dict[str, list[str]],
                         one: Callable[..., str]) -> str:
        """Participants.create: ring To; answered, the leg joins the conference with its flags."""
        conference = self._conference_by_sid(conference_sid)
        if conference is None:
            self.unmatched_rest.append(f"participant for unknown conference {conference_sid}")
            return f"no conference {conference_sid}"
        leg = ParticipantLeg(
            self, conference, to_number=one("To"), from_number=one("From"),
            muted=one("Muted") == "true", coaching=one("Coaching") == "true",
            call_sid_to_coach=one("CallSidToCoach"),
            start_on_enter=_flag(one("StartConferenceOnEnter") or None, True),
            end_on_exit=one("EndConferenceOnExit") == "true",
            status_callback=one("StatusCallback"),
            events=frozenset(values.get("StatusCallbackEvent") or ["completed"]),
            timeout=int(one("Timeout", "60") or 60))
        self.staff_legs.append(leg)
        leg._ring()
        return f"ringing {leg.to_number} for conference {conference.name}"


class ParticipantLeg(StaffLeg):
    """A call Twilio places for Participants.create (a supervisor): answered, it joins the
    conference straight away with the participant's flags; no TwiML is fetched."""

    def __init__(self, emulator: TwilioEmulator, conference: Conference, *, to_number: str,
                 from_number: str, muted: bool, coaching: bool, call_sid_to_coach: str,
                 start_on_enter: bool, end_on_exit: bool, status_callback: str,
                 events: frozenset[str], timeout: int):
        super().__init__(emulator, to_number=to_number, from_number=from_number, url="",
                         method="POST", twiml="", status_callback=status_callback,
                         status_callback_method="POST", events=events, timeout=timeout)
        self.joining = conference
        self.flags = Participant(self, start_on_enter, end_on_exit, muted=muted,
                                 coaching=coaching, call_sid_to_coach=call_sid_to_coach)

    @property
    def for_call(self) -> str | None:
        """The caller's CallSid: callflow names each caller's conference after their call."""
        return self.joining.name

    def __repr__(self) -> str:
        return f"<ParticipantLeg {self.to_number} for {self.joining.name} {self.status}>"

    def answer(self) -> None:
        """The supervisor picks up and is put into the conference, muted or coaching as asked."""
        with self.emulator.step():
            if not self.ringing:
                raise ScriptError(f"{self!r} is not ringing")
            self.status = "in-progress"
            self.answered_at = self.emulator.clock()
            if "answered" in self.events:
                self._post_status("in-progress")
            conference = self.joining
            if conference.ended:
                self._end("completed")
                return
            self._pending = _Pending("conference", ET.Element("Dial"), [], "", conference)
            self.transcript.append(f"conference: {conference.name}")
            self.emulator.add_participant(conference, self.flags)

    def speak(self, words: str) -> None:
        """The supervisor says something: heard as their flags allow (see Conference.hears)."""
        with self.emulator.step():
            speak_in_conference(self, words)


def hears(conference: Conference, listener: Leg, speaker: Leg) -> bool:
    """Whether `listener` hears `speaker` in the conference: nobody hears a muted participant,
    only the coached call hears a coach."""
    said = conference.participants.get(speaker.sid)
    if said is None or listener.sid not in conference.participants or listener is speaker:
        return False
    if said.muted:
        return False
    if said.coaching:
        return listener.sid == said.call_sid_to_coach
    return True


def speak_in_conference(speaker: Leg, words: str) -> list[str]:
    """`speaker` talks in their conference; each participant who hears it notes it. Returns
    the CallSids of those who heard."""
    name = speaker.conference
    conference = speaker.emulator.conferences.get(name) if name else None
    if conference is None:
        return []
    heard = []
    for other in conference.participants.values():
        if hears(conference, other.leg, speaker):
            other.leg.transcript.append(f"heard {_party(speaker)}: {words}")
            heard.append(other.leg.sid)
    return heard
