"""A call's timeline in plain English: each logged event becomes one step a supervisor reads.

Each event kind has a small function that words it; `describe` looks the kind up in one table
and words any kind it does not know from the event's own fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from callflow import words
from callflow.announcement import LEAVE_WORDS, Party, leave_reason
from callflow.events import EventKind
from callflow.phone import display
from callflow.recording import RECORDING_STATUS_WORDS, duration_words, recording_status
from callflow.supervision import MODE_DOING, SupervisionMode
from store.call_queries import DECISION_LABELS, TimelineEvent


@dataclass(frozen=True)
class Step:
    """One line of a call's timeline, in words."""

    at: datetime
    kind: str
    title: str
    text: str = ""
    link: str = ""
    quiet: bool = False


class Words(NamedTuple):
    """What a step says: its title, its detail, a link (a recording) and whether it is minor."""

    title: str
    text: str = ""
    link: str = ""
    quiet: bool = False


@dataclass(frozen=True)
class Facts:
    """What an event's wording may draw on."""

    kind: str
    detail: Mapping[str, Any]
    who: str  # the member of staff the event names, or ""
    extra: str  # the category, note and police reference given, if any
    refs: Mapping[int, str]  # register entries' customer references by id
    at: datetime  # when the event happened


def staff_name(names: Mapping[int, str], value: object) -> str:
    """A member of staff's name from their id as logged, or words that stand in for it."""
    try:
        return names.get(int(value), f"staff {value}")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "someone"


def safe_link(url: object) -> str:
    """The address if it is a web address (so never `javascript:`), else ""."""
    text = str(url or "")
    return text if text.startswith(("https://", "http://")) else ""


def _leg(d: Mapping[str, Any]) -> str:
    return f"as {words.label(d.get('leg', ''), words.LEG_LABELS)}" if d.get("leg") else ""


def _reason_and_note(f: Facts) -> tuple[str, str]:
    d = f.detail
    why = words.reason(d["reason"]) if d.get("reason") else "no reason given"
    note = f"; note: {d['note']}" if d.get("note") else ""
    return why, f"{f.who or 'the agent'}{note}"


def _received(f: Facts) -> Words:
    caller = display(str(f.detail["from"])) if f.detail.get("from") else "an unknown number"
    return Words("Call received",
                 "number withheld" if f.detail.get("withheld") else f"from {caller}")


def _lookup(f: Facts) -> Words:
    if f.detail.get("failed"):
        return Words("Register check failed",
                     "the register could not be read; the call was routed as normal")
    entry = f.detail.get("entry_id")
    found = (f"on the register: {f.refs.get(int(entry), 'an entry since removed')}" if entry
             else "not on the register")
    return Words("Register checked", found)


_ENTRY_ID_PREFIX = re.compile(r"^register entry \d+: ")


def _decision(f: Facts) -> Words:
    outcome = str(f.detail.get("outcome"))
    # The reason names the entry by its row id ("register entry 3: ..."); the lookup step
    # above already names it by customer reference.
    why = _ENTRY_ID_PREFIX.sub("", str(f.detail.get("reason", "")))
    return Words(f"Decision: {DECISION_LABELS.get(outcome, outcome)}", why)


def _emergency_declined(f: Facts) -> Words:
    digits = f.detail.get("digits")
    return Words("Emergency option not chosen",
                 f"pressed {digits}" if digits else "pressed nothing")


def _no_answer(f: Facts) -> Words:
    return Words(f"{f.who} did not answer",
                 f"{words.label(f.detail.get('status', ''), words.STATUS_LABELS)}; "
                 f"next: {words.humanise(f.detail.get('next', ''))}")


def _voicemail(f: Facts) -> Words:
    seconds = f.detail.get("duration")
    return Words("Voicemail left", f"{seconds} seconds" if seconds else "",
                 safe_link(f.detail.get("recording_url")))


def _recording(f: Facts) -> Words:
    return Words(f"Recording {words.humanise(f.detail.get('status', ''))}".strip(), "",
                 safe_link(f.detail.get("recording_url")), quiet=True)


def _status(f: Facts) -> Words:
    duration = f.detail.get("duration")
    return Words(f"Call {words.label(f.detail.get('status'), words.STATUS_LABELS)}",
                 f"{duration} seconds" if duration is not None else "")


def _ended_by_agent(f: Facts) -> Words:
    if f.detail.get("by") == "callflow":  # policy 4.6: a call of limited length
        return Words("Ended at the agreed call length",
                     f"after {f.detail.get('minutes')} minutes, with the closing statement")
    why, by = _reason_and_note(f)
    return Words(f"Ended by the agent: {why}", by + _recovery_words(f))


def _recovery_words(f: Facts) -> str:
    """The agent's time to recover after an abusive call (issue 14), in minutes."""
    until = f.detail.get("recovery_until")
    if not until:
        return ""
    try:
        minutes = round((datetime.fromisoformat(str(until)) - f.at).total_seconds() / 60)
    except (TypeError, ValueError):
        return ""
    return f"; then {minutes} minute{'s' if minutes != 1 else ''} off calls to recover"


def _wrap_up(f: Facts) -> Words:
    why, by = _reason_and_note(f)
    return Words(f"Reason for ending given: {why}", by + _recovery_words(f))


def _contact_away(f: Facts) -> Words:
    role = "designated contact" if f.kind.startswith("designated") else "fallback contact"
    return Words(f"{f.who or 'The ' + role} not rung",
                 f"the {role} was away or signed out, so the call moved on")


def _fallback(f: Facts) -> Words:
    error = f.detail.get("error")
    return Words("Fallback route used", f"Twilio error {error}" if error else "")


def _supervising(f: Facts) -> Words:
    """A supervisor joined the call, or switched how they are on it (issue 14)."""
    mode = f.detail.get("mode", "")
    doing = MODE_DOING.get(SupervisionMode(mode)) if mode in set(SupervisionMode) else None
    title = (f"{f.who or 'A supervisor'} joined the call" if f.kind == EventKind.SUPERVISOR_JOINED
             else f"{f.who or 'A supervisor'} switched how they are on the call")
    return Words(title, f"now {doing}" if doing else "")


def _warning_failed(f: Facts) -> Words:
    why = f.detail.get("reason")
    return Words("Warning failed to play",
                 f"the caller did not hear it; the phone system said: {why}" if why
                 else "the caller did not hear it")


def _left_conference(f: Facts) -> Words:
    """Who left the call's conference and why (Twilio's ReasonParticipantLeft, issue 14)."""
    reason = LEAVE_WORDS[leave_reason(str(f.detail.get("reason", "")))]
    party = str(f.detail.get("party", ""))
    who = ("The caller" if party == Party.CALLER else
           (f.who or "The member of staff") if party == Party.STAFF else "Someone else")
    return Words(f"{who} left the conference call", reason)


def _machine(f: Facts) -> Words:
    return Words(f"{f.who or 'The member of staff'}'s voicemail answered",
                 "treated as no answer, so the call moved on")


def _call_recording(f: Facts) -> Words:
    status = recording_status(str(f.detail.get("status", "")))
    title = RECORDING_STATUS_WORDS[status] if status else "Call recording"
    seconds = f.detail.get("duration")
    return Words(title, duration_words(seconds) if isinstance(seconds, int) else "",
                 safe_link(f.detail.get("recording_url")))


def _unknown(f: Facts) -> Words:
    rest = "; ".join(f"{words.humanise(k)}: {words.humanise(v)}" for k, v in f.detail.items()
                     if k != "staff_id")
    return Words(words.humanise(f.kind).capitalize(), rest)


# What each event kind says on the timeline; a kind not here is shown by _unknown.
WORDING: dict[EventKind, Callable[[Facts], Words]] = {
    EventKind.RECEIVED: _received,
    EventKind.LOOKUP: _lookup,
    EventKind.DECISION: _decision,
    EventKind.EMERGENCY: lambda f: Words("Emergency option chosen",
                                         str(f.detail.get("reason", ""))),
    EventKind.EMERGENCY_DECLINED: _emergency_declined,
    EventKind.EMERGENCY_ENDED: lambda f: Words(
        "Emergency line call ended",
        words.label(f.detail.get("dial_status", ""), words.STATUS_LABELS)),
    EventKind.DIALLED: lambda f: Words(f"Rang {f.who}", _leg(f.detail)),
    EventKind.DIAL_REFUSED: lambda f: Words(f"Could not ring {f.who}",
                                            str(f.detail.get("message", ""))),
    EventKind.NO_ANSWER: _no_answer,
    EventKind.CONNECTED: lambda f: Words(f"Connected to {f.who}", _leg(f.detail)),
    EventKind.AGENT_LEFT: lambda f: Words(f"{f.who} left the call"),
    EventKind.VOICEMAIL_OFFERED: lambda f: Words("Voicemail offered"),
    EventKind.VOICEMAIL: _voicemail,
    EventKind.RECORDING: _recording,
    EventKind.STATUS: _status,
    EventKind.WARNING: lambda f: Words(f"Warning given by {f.who or 'the agent'}", f.extra),
    EventKind.ENDED_BY_AGENT: _ended_by_agent,
    EventKind.TIME_WARNING: lambda f: Words(
        "Time warning played", "the caller heard that the call would end in two minutes"),
    EventKind.WRAP_UP: _wrap_up,
    EventKind.DESIGNATED_CONTACT_AWAY: _contact_away,
    EventKind.FALLBACK_CONTACT_AWAY: _contact_away,
    EventKind.INCIDENT: lambda f: Words("Incident reported", f.extra),
    EventKind.WARNING_PLAYED: lambda f: Words("Warning played", "the caller heard the warning"),
    EventKind.WARNING_FAILED: _warning_failed,
    EventKind.LEFT_CONFERENCE: _left_conference,
    EventKind.ANSWERING_MACHINE: _machine,
    EventKind.CALL_RECORDING: _call_recording,
    EventKind.CONFERENCE: lambda f: Words(
        words.label(f.detail.get("event", ""), words.CONFERENCE_LABELS), quiet=True),
    EventKind.FALLBACK: _fallback,
    EventKind.HELP_REQUESTED: lambda f: Words(f"Help requested by {f.who or 'the agent'}",
                                              "every available supervisor was alerted"),
    EventKind.HELP_ANSWERED: lambda f: Words(f"Help answered by {f.who or 'a supervisor'}"),
    EventKind.SUPERVISOR_JOINED: _supervising,
    EventKind.SUPERVISION_CHANGED: _supervising,
    EventKind.SUPERVISOR_LEFT: lambda f: Words(f"{f.who or 'A supervisor'} left the call",
                                               "" if f.detail.get("answered") else
                                               "they did not answer"),
}


def describe(event: TimelineEvent, names: Mapping[int, str], refs: Mapping[int, str]) -> Step:
    """A timeline event in words a supervisor reads without knowing the event schema."""
    d = event.detail
    who = staff_name(names, d.get("staff_id")) if d.get("staff_id") is not None else ""
    extra = "; ".join(part for part in (
        words.reason(d["category"]) if d.get("category") else "",
        f"note: {d['note']}" if d.get("note") else "",
        f"police reference {d['police_reference']}" if d.get("police_reference") else "",
    ) if part)
    wording = WORDING.get(event.kind, _unknown)
    said = wording(Facts(event.kind, d, who, extra, refs, event.at))
    return Step(event.at, event.kind, *said)
