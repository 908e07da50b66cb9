"""What a person reads: dates, times and labels in plain English, GOV.UK style, from one place.

Pure: no clock or environment; the caller passes the centre's time zone. Used by the workspace
templates (as Jinja filters), the CLI, letters, and the console (the API sends preformatted text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, tzinfo

from callflow.call_limits import LimitEnd
from callflow.ending import EndReason
from callflow.register import CATEGORY_LABELS, FIELD_LABELS, Category
from callflow.roles import Role

ROLE_LABELS: dict[str, str] = {
    Role.AGENT: "agent",
    Role.SUPERVISOR: "supervisor",
    Role.MANAGER: "manager",
    Role.ADMIN: "administrator",
}

_POLICY_REF = re.compile(r"\s*\(\d+\.\d+\)$")
THREAT = EndReason.THREAT_OR_VIOLENCE

# Why a call was ended or an incident raised: a register category, or threats or violence.
REASON_LABELS: dict[str, str] = {
    **{c.value: _POLICY_REF.sub("", text).lower() for c, text in CATEGORY_LABELS.items()},
    THREAT: "threats or violence",
    LimitEnd.CALL_LENGTH.value: "the agreed call length was reached",
}

LEG_LABELS = {"pool": "the next free agent", "designated": "the designated contact",
              "fallback": "the second contact"}

# Twilio call and dial statuses.
STATUS_LABELS = {
    "queued": "queued",
    "ringing": "ringing",
    "in-progress": "in progress",
    "completed": "completed",
    "busy": "busy",
    "failed": "failed",
    "no-answer": "no answer",
    "machine": "answered by a machine (voicemail), so treated as no answer",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}

# Twilio conference status callbacks.
CONFERENCE_LABELS = {
    "conference-start": "Conference started",
    "conference-end": "Conference ended",
    "participant-join": "Someone joined the conference",
    "participant-leave": "Someone left the conference",
    "participant-mute": "Someone was muted",
    "participant-unmute": "Someone was unmuted",
    "participant-hold": "Someone was put on hold",
    "participant-unhold": "Someone was taken off hold",
    "announcement-end": "Announcement finished",
    "announcement-fail": "Announcement failed",
}

# The console API's fields, as an agent reads them in an error message.
API_FIELD_LABELS = {
    "reason": "the reason",
    "note": "the note",
    "notes": "the notes",
    "category": "the category",
    "categories": "the kinds of behaviour",
    "police_reference": "the police reference",
    "customer_ref": "the customer reference",
    "availability": "your availability",
    "body": "the request",
}

# What an audit record says happened to a register entry.
AUDIT_ACTION_LABELS = {
    "created": "Added",
    "updated": "Changed",
    "lifted": "Lifted",
    "lapsed": "Ended on its end date",
    "reviewed": "Reviewed",
    "anonymised": "Personal details removed",
    "notice_withdrawn": "Unsent notice withdrawn",
    "not_told": "Recorded why they are not told in writing",
}

# Names of the things an audit record changes, beyond the register's own columns.
CHANGE_LABELS = {
    **FIELD_LABELS,
    "lifted": "Lifted",
    "lapsed": "Ended on",
    "review_note": "Review note",
    "unsent_notices": "Unsent restriction notices",
}

_CODE = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)+$")


def humanise(code: object) -> str:
    """Last resort for a code with no label: "unreasonable_demands" -> "unreasonable demands"."""
    text = str(code or "").strip()
    return text.replace("_", " ").replace("-", " ") if _CODE.match(text) else text


def label(code: object, *tables: Mapping[str, str]) -> str:
    """A code's label from the first table that has it, else the code in words."""
    text = str(code or "")
    for table in tables:
        if text in table:
            return table[text]
    return humanise(text)


def audit_action(code: object) -> str:
    """What an audit record's action means: "Lifted", "Unsent notice withdrawn"."""
    return label(code, AUDIT_ACTION_LABELS).capitalize()


def change_name(code: object) -> str:
    """The name of a changed field: "Ends on", "Reason for lifting"."""
    return label(code, CHANGE_LABELS).capitalize()


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$")


def stored_value(value: object, tz: tzinfo) -> str:
    """A value as stored in an audit record, in words: dates and instants as people write them,
    categories by their labels; anything else as it is."""
    text = str(value if value is not None else "")
    if _ISO_DATE.match(text):
        return short_date(date.fromisoformat(text))
    if _ISO_MOMENT.match(text):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return local_moment(moment, tz)
    codes = [part.strip() for part in text.split(";")]
    if text and all(code in {c.value for c in Category} for code in codes):
        return "; ".join(category(code) for code in codes)
    return text


def category(code: object) -> str:
    """A register category's label (the one staff see, with the policy paragraph)."""
    try:
        return CATEGORY_LABELS[Category(str(code))]
    except ValueError:
        return label(code, REASON_LABELS)


def reason(code: object) -> str:
    """The reason a call was ended or an incident raised, in lower-case words."""
    return label(code, REASON_LABELS)


def role_name(code: object) -> str:
    """A staff role in words: "agent", "administrator"."""
    return label(code, ROLE_LABELS)


def role(code: object) -> str:
    """A staff role, with its article: "an agent", "a manager", "an administrator"."""
    word = role_name(code)
    return ("an " if word[:1] in "aeiou" else "a ") + word


def clock(moment: time | datetime, seconds: bool = False) -> str:
    """A time of day, GOV.UK style: 3:59pm, 10am, midday, midnight."""
    hour, minute, second = moment.hour, moment.minute, moment.second
    if not seconds:
        second = 0
    if (minute, second) == (0, 0) and hour in (0, 12):
        return "midnight" if hour == 0 else "midday"
    suffix = "am" if hour < 12 else "pm"
    shown = hour % 12 or 12
    if seconds:
        return f"{shown}:{minute:02d}:{second:02d}{suffix}"
    return f"{shown}{suffix}" if minute == 0 else f"{shown}:{minute:02d}{suffix}"


def duration(seconds: int) -> str:
    """A length of time in seconds as a person reads it: "4 minutes 5 seconds", "45 seconds"."""
    minutes, rest = divmod(max(0, seconds), 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if rest or not minutes:
        parts.append(f"{rest} second{'s' if rest != 1 else ''}")
    return " ".join(parts)


def minute_of_day(minute: int) -> str:
    """A minute of the day (0 to 1440) as clock() writes it; 1440 is midnight at the end."""
    if minute >= 24 * 60:
        return "midnight"
    return clock(time(minute // 60, minute % 60))


def long_date(day: date) -> str:
    """A date in full, as letters write it: 1 December 2026."""
    return f"{day.day} {day:%B %Y}"


def short_date(day: date | None) -> str:
    """A date where space is short (tables): Tue 1 Dec 2026; empty for none."""
    return f"{day:%a} {day.day} {day:%b %Y}" if day else ""


def local_moment(moment: datetime | None, tz: tzinfo, seconds: bool = False) -> str:
    """An instant in the centre's time zone: Tue 1 Dec 2026, 3:59pm; empty for none."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return f"{short_date(local.date())}, {clock(local, seconds)}"
