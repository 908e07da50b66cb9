"""A call as staff act on it: find it, check who may act on it, and refuse in plain words.

The warn, end and report use cases (usecases.end_call, usecases.call_reports) start here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select

from callflow.call_state import CALL_SID_PATTERN, CallState
from callflow.ending import remembered_abuse
from callflow.roles import Capability, may
from store.call_queries import AbusiveEnd, last_abusive_end
from store.live_call import LiveCall, read_live
from store.models import Call, Staff
from store.twilio_rest import TwilioRefused
from usecases.bootstrap import Services

CONFERENCE_SID_PATTERN = re.compile(r"^CF[0-9a-fA-F]{32}$")

# Twilio error codes meaning the call or participant is already gone.
TWILIO_CALL_NOT_IN_PROGRESS = 21220
TWILIO_NOT_FOUND = 20404


class Refusal(StrEnum):
    """Why an action on a call was refused, for the shell to answer in its own terms."""

    NOT_FOUND = "not_found"
    NOT_ALLOWED = "not_allowed"
    CONFLICT = "conflict"
    INVALID = "invalid"


class CallRefused(Exception):
    """An action on a call that cannot be done; the message is for the member of staff."""

    def __init__(self, refusal: Refusal, message: str, field: str | None = None):
        super().__init__(message)
        self.refusal = refusal
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Actor:
    """Who is acting, and how they proved it ("session" or "token")."""

    staff: Staff
    via: str | None

    @property
    def detail(self) -> dict[str, object]:
        """Who did it, for the call log's audit trail."""
        return {"staff_id": self.staff.id, "staff_email": self.staff.email, "via": self.via}


@dataclass(frozen=True)
class CallContext:
    """A call as the API sees it: its live state, or its call log row once live state is gone."""

    sid: str
    live: LiveCall | None  # None once live state is gone
    row: Call | None

    @property
    def staff_id(self) -> int | None:
        """The member of staff connected to the call."""
        if self.live is not None and self.live.staff_id is not None:
            return self.live.staff_id
        return self.row.agent_id if self.row is not None else None

    @property
    def ended(self) -> bool:
        """The call is over (hung up, or ended by an agent)."""
        if self.live is not None:
            return self.live.state is CallState.ENDED or bool(self.live.ended_by_agent)
        return True  # only a call log row is left: the call finished long ago

    @property
    def warned(self) -> bool:
        """A warning was played on this call."""
        return bool(self.live and self.live.warned) or bool(self.row and self.row.warned)


def find_call(services: Services, sid: str) -> CallContext:
    """The call, or CallRefused NOT_FOUND when neither live state nor a call log row knows it."""
    if not CALL_SID_PATTERN.match(sid):
        raise CallRefused(Refusal.NOT_FOUND, "no such call")
    live: LiveCall | None = read_live(services.redis, sid)
    if live == LiveCall():
        live = None
    row = None
    if live is None or live.staff_id is None:
        with services.sessions() as db:
            row = db.scalar(select(Call).where(Call.call_sid == sid))
    if live is None and row is None:
        raise CallRefused(Refusal.NOT_FOUND, "no such call")
    return CallContext(sid, live, row)


def acting_on(services: Services, actor: Actor, sid: str) -> CallContext:
    """The call `actor` acts on, once they are known to be allowed to.

    An agent acts only on the call they are on; supervisors and managers on any call.
    """
    call = find_call(services, sid)
    if not may(actor.staff.role, Capability.SUPERVISE_CALLS) and call.staff_id != actor.staff.id:
        raise CallRefused(Refusal.NOT_ALLOWED, "you are not on this call")
    return call


def gone_or_refused(refused: TwilioRefused) -> Exception:
    """Twilio saying the call has already gone is a conflict, not a fault; else its refusal."""
    if refused.code == TWILIO_CALL_NOT_IN_PROGRESS:
        return CallRefused(Refusal.CONFLICT, "call already ended")
    if refused.code == TWILIO_NOT_FOUND:
        return CallRefused(Refusal.CONFLICT, "the caller is no longer on the call")
    return refused


def abuse_remembered(services: Services, number: str, sid: str,
                     now: datetime) -> AbusiveEnd | None:
    """This number's last call ended for abuse or threats, if colleagues are still warned of it.

    Policy 5.2: highlighted to relevant staff, whether or not the number is on the register;
    for CALLFLOW_ABUSE_MEMORY_DAYS after it. The call `sid` itself is left out.
    """
    days = services.settings.abuse_memory_days
    if not number or days <= 0:
        return None
    with services.sessions() as db:
        found = last_abusive_end(db, number, now - timedelta(days=days), exclude_sid=sid)
    if found is None or not remembered_abuse(found.ended_at, now, days):
        return None
    return found
