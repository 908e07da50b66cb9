"""The call log's vocabulary: what can happen to a call, and the events that say it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from callflow.effects import CallEffect, DialPerson, Leg, NextAgent, OfferVoicemail


class EventKind(StrEnum):
    """An event's kind, as the call log stores it (the values are the database's)."""

    RECEIVED = "received"
    LOOKUP = "lookup"
    DECISION = "decision"
    EMERGENCY = "emergency"
    EMERGENCY_DECLINED = "emergency_declined"
    EMERGENCY_ENDED = "emergency_ended"
    DIALLED = "dialled"
    DIAL_REFUSED = "dial_refused"
    NO_ANSWER = "no_answer"
    DESIGNATED_CONTACT_AWAY = "designated_contact_away"
    FALLBACK_CONTACT_AWAY = "fallback_contact_away"
    POOL_CONTACT_AWAY = "pool_contact_away"  # a pool agent named directly (the path does not)
    CONNECTED = "connected"
    ANSWERED_TOO_LATE = "answered_too_late"
    AGENT_LEFT = "agent_left"
    CONFERENCE = "conference"
    VOICEMAIL_OFFERED = "voicemail_offered"
    VOICEMAIL = "voicemail"
    RECORDING = "recording"
    STATUS = "status"
    FALLBACK = "fallback"
    # Written by the console.
    WARNING = "warning"
    TIME_WARNING = "time_warning"  # written by a call-limit job: the call ends in two minutes
    ENDED_BY_AGENT = "ended_by_agent"
    WRAP_UP = "wrap_up"
    INCIDENT = "incident"
    PROPOSAL = "proposal"
    # The warning as Twilio played it, who left the conference and why, answering machines and
    # call recordings (issue 14 items 5-7).
    WARNING_PLAYED = "warning_played"
    WARNING_FAILED = "warning_failed"
    LEFT_CONFERENCE = "left_conference"
    ANSWERING_MACHINE = "answering_machine"
    CALL_RECORDING = "call_recording"
    # Live supervision (issue 14): help asked for and answered; a supervisor on the call.
    HELP_REQUESTED = "help_requested"
    HELP_ANSWERED = "help_answered"
    SUPERVISOR_JOINED = "supervisor_joined"
    SUPERVISION_CHANGED = "supervision_changed"
    SUPERVISOR_LEFT = "supervisor_left"


@dataclass(frozen=True)
class Event:
    """Something to record in the call log; key is unique within the call, so it lands once."""

    kind: str
    key: str
    at: datetime
    detail: dict[str, object] = field(default_factory=dict)


def received(at: datetime, number: str | None, called: str, withheld: bool) -> Event:
    """The call reached callflow."""
    return Event(EventKind.RECEIVED, "received", at,
                 {"from": number, "to": called, "withheld": withheld})


def looked_up(at: datetime, source: str, failed: bool, entry_id: int | None) -> Event:
    """The register was checked for the caller."""
    return Event(EventKind.LOOKUP, "lookup", at,
                 {"source": source, "failed": failed, "entry_id": entry_id})


def emergency_declined(at: datetime, digits: str) -> Event:
    """The caller heard the emergency option and pressed another key, or none."""
    return Event(EventKind.EMERGENCY_DECLINED, f"menu:{digits or 'none'}", at, {"digits": digits})


def emergency_ended(at: datetime, dial_status: str) -> Event:
    """The emergency line's leg ended."""
    return Event(EventKind.EMERGENCY_ENDED, "emergency-ended", at, {"dial_status": dial_status})


def dialled(at: datetime, staff_id: int, attempt: int, leg: str) -> Event:
    """A member of staff's phone was rung for the caller."""
    return Event(EventKind.DIALLED, f"dialled:{staff_id}:{attempt}", at,
                 {"staff_id": staff_id, "leg": leg})


def dial_refused(at: datetime, staff_id: int, attempt: int, status: int, message: str) -> Event:
    """Twilio refused to ring a member of staff."""
    return Event(EventKind.DIAL_REFUSED, f"dial-refused:{staff_id}:{attempt}", at,
                 {"staff_id": staff_id, "status": status, "message": message})


# How the call log words what followed an unanswered leg (its "next" detail).
_NEXT_WORDS = {NextAgent: "pool", DialPerson: "dial", OfferVoicemail: "voicemail"}


def no_answer(at: datetime, staff_id: int, attempt: int | str, status: str, leg: str,
              step: CallEffect | None = None) -> Event:
    """A member of staff's phone was not answered (or was busy, or failed); step is what
    followed, when known."""
    detail: dict[str, object] = {"staff_id": staff_id, "status": status, "leg": leg}
    if step is not None:
        detail["next"] = _NEXT_WORDS[type(step)]
    return Event(EventKind.NO_ANSWER, f"agent:{staff_id}:{attempt}:{status}", at, detail)


def contact_away(at: datetime, staff_id: int, leg: Leg) -> Event:
    """A designated or fallback contact was away, so was not rung."""
    return Event(EventKind(f"{leg.value}_contact_away"), f"away:{staff_id}", at,
                 {"staff_id": staff_id, "leg": leg.value})


def connected(at: datetime, staff_id: int, leg: str) -> Event:
    """A member of staff answered and joined the caller."""
    return Event(EventKind.CONNECTED, f"connected:{staff_id}", at,
                 {"staff_id": staff_id, "leg": leg})


def answered_too_late(at: datetime, staff_id: int) -> Event:
    """A member of staff answered after the caller had gone or moved on."""
    return Event(EventKind.ANSWERED_TOO_LATE, f"late:{staff_id}", at, {"staff_id": staff_id})


def agent_left(at: datetime, staff_id: int, attempt: int | str) -> Event:
    """A member of staff's leg of the call ended after they had answered."""
    return Event(EventKind.AGENT_LEFT, f"agent:{staff_id}:{attempt}:completed", at,
                 {"staff_id": staff_id})


def conference(at: datetime, name: str, participant: str, sequence: str,
               conference_sid: str) -> Event:
    """One of Twilio's conference status callbacks."""
    return Event(EventKind.CONFERENCE, f"conference:{name}:{participant}:{sequence}", at,
                 {"event": name, "participant": participant, "conference_sid": conference_sid})


def voicemail_offered(at: datetime) -> Event:
    """The caller heard the voicemail prompt."""
    return Event(EventKind.VOICEMAIL_OFFERED, "voicemail-offered", at)


def voicemail(at: datetime, recording_sid: str, recording_url: str, duration: str) -> Event:
    """The caller left a voicemail."""
    return Event(EventKind.VOICEMAIL, f"voicemail:{recording_sid or 'none'}", at,
                 {"recording_url": recording_url, "duration": duration})


def recording(at: datetime, recording_sid: str, recording_url: str, status: str) -> Event:
    """Twilio's recording status callback."""
    return Event(EventKind.RECORDING, f"recording:{recording_sid or 'none'}:{status}", at,
                 {"recording_url": recording_url, "status": status})


def status(at: datetime, key: str, call_status: str, duration: int | None,
           sequence: int | None) -> Event:
    """The caller's call status callback; key tells a retry from a second callback."""
    return Event(EventKind.STATUS, key, at,
                 {"status": call_status, "duration": duration, "sequence": sequence})


def fallback(at: datetime, key: str = "fallback", **detail: object) -> Event:
    """The caller heard the trouble route."""
    return Event(EventKind.FALLBACK, key, at, dict(detail))


def warning_heard(at: datetime, outcome: str, participant: str, sequence: str,
                  reason: str = "") -> Event:
    """Twilio said whether the warning announced to the caller played or failed."""
    kind = EventKind.WARNING_PLAYED if outcome == "played" else EventKind.WARNING_FAILED
    detail: dict[str, object] = {"participant": participant}
    if reason:
        detail["reason"] = reason
    return Event(kind, f"{kind.value}:{participant}:{sequence}", at, detail)


def left_conference(at: datetime, participant: str, party: str, reason: str,
                    call_status: str, sequence: str, staff_id: int | None = None) -> Event:
    """Someone left the call's conference, with Twilio's ReasonParticipantLeft."""
    detail: dict[str, object] = {"participant": participant, "party": party, "reason": reason,
                                 "call_status": call_status}
    if staff_id is not None:
        detail["staff_id"] = staff_id
    return Event(EventKind.LEFT_CONFERENCE, f"left:{participant}:{sequence}", at, detail)


def answering_machine(at: datetime, staff_id: int, attempt: int | str, leg: str,
                      answered_by: str) -> Event:
    """A member of staff's phone was answered by a machine, so it counts as no answer."""
    return Event(EventKind.ANSWERING_MACHINE, f"machine:{staff_id}:{attempt}", at,
                 {"staff_id": staff_id, "leg": leg, "answered_by": answered_by})


def call_recording(at: datetime, recording_sid: str, status: str, duration: int | None,
                   recording_url: str | None) -> Event:
    """Twilio's recording status callback for a recorded call (kept as evidence)."""
    return Event(EventKind.CALL_RECORDING, f"call-recording:{recording_sid}:{status}", at,
                 {"recording_sid": recording_sid, "status": status, "duration": duration,
                  "recording_url": recording_url})
