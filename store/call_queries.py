"""Reading the call log: filtered, newest-first pages by keyset, exports, and daily counts.

Every query here is bounded by an index: pages seek on (started_at, id) and never count or skip
rows, so the tenth-millionth call is as quick to reach as the first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from callflow.decision import Outcome
from callflow.ending import EndReason, abuse_reason
from callflow.events import EventKind
from callflow.roles import Role
from store.models import AuditRecord, Call, CallEvent, EntryPhone, RegisterEntry, Staff

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

# Flags a supervisor can filter the decision column by, beside the outcomes themselves; withheld,
# register_check_failed and emergency are read from the call's flags, which are set however the
# call went on (a withheld caller out of hours is decided "closed", but was still withheld).
FLAG_DECISIONS = {
    "connected": "put through to a person",
    "voicemail": "left a voicemail",
    "emergency": "chose the emergency option",
    "withheld": "number withheld",
    "register_check_failed": "register could not be read",
}
DECISION_LABELS = {
    Outcome.CENTRE.value: "Centre (not restricted)",
    Outcome.WITHIN_WINDOW.value: "Within agreed window",
    Outcome.DESIGNATED_CONTACT.value: "Designated contact",
    Outcome.OUTSIDE_WINDOW.value: "Outside window",
    Outcome.WRITTEN_ONLY.value: "Written only",
    Outcome.OVER_CALL_LIMIT.value: "Over the agreed number of calls",
    Outcome.CLOSED.value: "Closed",
    Outcome.WITHHELD.value: "Withheld",
    Outcome.REGISTER_CHECK_FAILED.value: "Register check failed",
    Outcome.EMERGENCY.value: "Emergency",
}
DECISION_FILTERS = {
    **{o.value: DECISION_LABELS[o.value] for o in Outcome if o.value not in FLAG_DECISIONS},
    **{k: v[0].upper() + v[1:] for k, v in FLAG_DECISIONS.items()},
}
MARKS = ("warned", "ended_by_agent", "incident")


# ASCII digits only (str.isdigit() takes "²"), and no more than a row id or an instant can hold.
_CURSOR = re.compile("(-?[0-9]{1,17})[.]([0-9]{1,18})")


class CursorInvalid(ValueError):
    """A page cursor that was not made by this module."""


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in the log: the (started_at, id) of a row, newest first."""

    started_at: datetime
    id: int

    def __str__(self) -> str:
        micros = round(self.started_at.timestamp() * 1_000_000)
        return f"{micros}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Back from str(cursor)."""
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise CursorInvalid("that is not a page cursor")
        try:
            at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(match[1]))
        except OverflowError:
            raise CursorInvalid("that page cursor is out of range") from None
        return cls(at, int(match[2]))


@dataclass(frozen=True)
class CallFilter:
    """What a supervisor asked to see; every field narrows the log."""

    date_from: date | None = None  # local dates, both inclusive
    date_to: date | None = None
    number: str | None = None  # E.164
    entry_id: int | None = None  # a person of interest: their entry's calls and numbers
    person_numbers: tuple[str, ...] = ()
    decision: str | None = None
    agent_id: int | None = None
    marks: frozenset[str] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        """True when nothing narrows the log."""
        return self == CallFilter()


@dataclass(frozen=True)
class CallRow:
    """One line of the log, with the names it refers to already resolved."""

    id: int
    call_sid: str
    started_at: datetime  # its earliest event: "received", or what came first if that was lost
    ended_at: datetime | None
    from_number: str | None
    withheld: bool
    decision: str | None
    lookup_failed: bool
    agent_id: int | None
    agent_name: str
    customer_ref: str
    status: str | None
    duration_seconds: int | None
    warned: bool
    ended_by_agent: bool
    incident: bool
    emergency: bool
    voicemail: bool
    recording_url: str | None

    @property
    def cursor(self) -> Cursor:
        """This row's position in the log."""
        return Cursor(self.started_at, self.id)

    @property
    def flags(self) -> list[str]:
        """Short labels for what happened on the call beyond its decision."""
        names = (
            ("withheld", self.withheld),
            ("register check failed", self.lookup_failed),
            ("emergency", self.emergency),
            ("voicemail", self.voicemail),
            ("warned", self.warned),
            ("ended by agent", self.ended_by_agent),
            ("incident", self.incident),
        )
        return [name for name, on in names if on]


@dataclass(frozen=True)
class Page:
    """A page of the log with the cursors that lead to its neighbours."""

    rows: list[CallRow]
    newer: Cursor | None  # pass as before= to see the page above
    older: Cursor | None  # pass as after= to see the page below


_COLUMNS = (
    Call.id, Call.call_sid, Call.started_at, Call.ended_at, Call.from_number, Call.withheld,
    Call.decision, Call.lookup_failed, Call.agent_id, Call.entry_id, Call.status,
    Call.duration_seconds, Call.warned, Call.ended_by_agent, Call.incident, Call.emergency,
    Call.voicemail, Call.recording_url,
)


def local_bounds(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC instants from the start of local day `first` to the end of local day `last`."""
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def _conditions(f: CallFilter, tz: tzinfo) -> list[ColumnElement[bool]]:
    # Written as bare boolean columns so the partial indexes of migration 0003 match them.
    where: list[ColumnElement[bool]] = [Call.started_at.is_not(None)]
    if f.date_from:
        where.append(Call.started_at >= local_bounds(f.date_from, f.date_from, tz)[0])
    if f.date_to:
        where.append(Call.started_at < local_bounds(f.date_to, f.date_to, tz)[1])
    if f.number:
        where.append(Call.from_number == f.number)
    if f.entry_id is not None:
        person = [Call.entry_id == f.entry_id]
        if f.person_numbers:
            person.append(Call.from_number.in_(f.person_numbers))
        where.append(or_(*person))
    if f.agent_id is not None:
        where.append(Call.agent_id == f.agent_id)
    decision = f.decision
    if decision == "connected":
        where.append(Call.agent_id.is_not(None))
    elif decision == "voicemail":
        where.append(Call.voicemail)
    elif decision == "emergency":
        where.append(Call.emergency)
    elif decision == "withheld":
        where.append(Call.withheld)
    elif decision == "register_check_failed":
        where.append(Call.lookup_failed)
    elif decision:
        where.append(Call.decision == decision)
    for mark in sorted(f.marks):
        where.append(getattr(Call, mark))
    return where


def _older_than(cursor: Cursor) -> ColumnElement[bool]:
    # The redundant first term gives both databases an index range to seek on.
    return and_(
        Call.started_at <= cursor.started_at,
        or_(Call.started_at < cursor.started_at, Call.id < cursor.id),
    )


def _newer_than(cursor: Cursor) -> ColumnElement[bool]:
    return and_(
        Call.started_at >= cursor.started_at,
        or_(Call.started_at > cursor.started_at, Call.id > cursor.id),
    )


def _fetch(session: Session, f: CallFilter, tz: tzinfo, position: ColumnElement[bool] | None,
           newest_first: bool, limit: int) -> list:
    where = _conditions(f, tz)
    if position is not None:
        where.append(position)
    order = ((Call.started_at.desc(), Call.id.desc()) if newest_first
             else (Call.started_at.asc(), Call.id.asc()))
    return list(session.execute(select(*_COLUMNS).where(*where).order_by(*order).limit(limit)))


def _resolve(session: Session, raw: Sequence) -> list[CallRow]:
    """Attach agent names and customer references with two small look-ups, not joins."""
    agents = {r.agent_id for r in raw if r.agent_id is not None}
    entries = {r.entry_id for r in raw if r.entry_id is not None}
    names = dict(session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(agents))).all()) \
        if agents else {}
    refs = dict(session.execute(
        select(RegisterEntry.id, RegisterEntry.customer_ref).where(RegisterEntry.id.in_(entries))
    ).all()) if entries else {}
    rows = []
    for r in raw:
        values = r._asdict()
        entry_id = values.pop("entry_id")
        rows.append(CallRow(
            **values,
            agent_name=names.get(r.agent_id, ""),
            customer_ref=refs.get(entry_id, ""),
        ))
    return rows


def call_page(session: Session, f: CallFilter, tz: tzinfo, *, after: Cursor | None = None,
              before: Cursor | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of calls, newest first: below `after`, above `before`, or the newest."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    if before is not None:
        raw = _fetch(session, f, tz, _newer_than(before), newest_first=False, limit=size + 1)
        has_newer = len(raw) > size
        raw = list(reversed(raw[:size]))
        rows = _resolve(session, raw)
        return Page(rows, rows[0].cursor if rows and has_newer else None,
                    rows[-1].cursor if rows else None)
    position = _older_than(after) if after is not None else None
    raw = _fetch(session, f, tz, position, newest_first=True, limit=size + 1)
    has_older = len(raw) > size
    rows = _resolve(session, raw[:size])
    newer = rows[0].cursor if rows and after is not None else None
    return Page(rows, newer, rows[-1].cursor if rows and has_older else None)


def iter_calls(session: Session, f: CallFilter, tz: tzinfo, batch: int = 1000) -> Iterator[CallRow]:
    """Every call the filter matches, newest first, a keyset batch at a time (for exports)."""
    cursor: Cursor | None = None
    while True:
        position = _older_than(cursor) if cursor is not None else None
        raw = _fetch(session, f, tz, position, newest_first=True, limit=batch)
        if not raw:
            return
        rows = _resolve(session, raw)
        yield from rows
        if len(raw) < batch:
            return
        cursor = rows[-1].cursor
        # Each batch is its own short read; no transaction is held open across a slow download.
        session.rollback()


def person_scope(session: Session, customer_ref: str) -> tuple[int, tuple[str, ...]] | None:
    """(entry id, every number the entry has held) for a customer reference, or None."""
    entry = session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == customer_ref))
    if entry is None:
        return None
    numbers = list(session.scalars(
        select(EntryPhone.number).where(EntryPhone.entry_id == entry.id)
        .order_by(EntryPhone.position)
    ))
    for changes in session.scalars(
        select(AuditRecord.changes).where(AuditRecord.entry_id == entry.id)
    ):
        for side in (changes or {}).get("phone_numbers", []):
            numbers += [n.strip() for n in str(side).split(";") if n.strip().startswith("+")]
    return entry.id, tuple(dict.fromkeys(numbers))


def with_person(session: Session, f: CallFilter, customer_ref: str) -> CallFilter | None:
    """The filter narrowed to one person of interest, or None when the reference is unknown."""
    scope = person_scope(session, customer_ref)
    if scope is None:
        return None
    return replace(f, entry_id=scope[0], person_numbers=scope[1])


@dataclass(frozen=True)
class TimelineEvent:
    """One event on a call's timeline."""

    kind: str
    at: datetime
    detail: dict[str, object]


def call_by_sid(session: Session, call_sid: str) -> CallRow | None:
    """The log row of one call, by its CallSid."""
    raw = list(session.execute(select(*_COLUMNS).where(Call.call_sid == call_sid)))
    return _resolve(session, raw)[0] if raw else None


def timeline(session: Session, call_sid: str) -> list[TimelineEvent]:
    """Every event of a call, in the order it happened."""
    events = session.execute(
        select(CallEvent.kind, CallEvent.at, CallEvent.detail)
        .where(CallEvent.call_sid == call_sid)
        .order_by(CallEvent.at, CallEvent.id)
    )
    return [TimelineEvent(kind, at, detail if isinstance(detail, dict) else json.loads(detail))
            for kind, at, detail in events]


def _day_bucket(days: Sequence[date], tz: tzinfo) -> ColumnElement[int]:
    """The index of the local day a call started on, computed portably from UTC bounds."""
    whens = [(Call.started_at < local_bounds(day, day, tz)[1], index)
             for index, day in enumerate(days)]
    return case(*whens, else_=len(days))


def calls_per_day(session: Session, days: Sequence[date], tz: tzinfo
                  ) -> dict[date, dict[str, int]]:
    """Calls on each local day, by decision ("unknown" when none was recorded)."""
    start, end = local_bounds(days[0], days[-1], tz)
    bucket = _day_bucket(days, tz).label("bucket")
    rows = session.execute(
        select(bucket, Call.decision, func.count())
        .where(Call.started_at >= start, Call.started_at < end)
        .group_by(bucket, Call.decision)
    )
    counts: dict[date, dict[str, int]] = {day: {} for day in days}
    for index, decision, count in rows:
        if index < len(days):
            counts[days[index]][decision or "unknown"] = count
    return counts


def marks_per_day(session: Session, days: Sequence[date], tz: tzinfo
                  ) -> dict[date, dict[str, int]]:
    """Warnings, calls ended by an agent and incidents on each local day."""
    start, end = local_bounds(days[0], days[-1], tz)
    bucket = _day_bucket(days, tz).label("bucket")
    rows = session.execute(
        select(bucket,
               func.sum(case((Call.warned, 1), else_=0)),
               func.sum(case((Call.ended_by_agent, 1), else_=0)),
               func.sum(case((Call.incident, 1), else_=0)))
        .where(Call.started_at >= start, Call.started_at < end,
               or_(Call.warned, Call.ended_by_agent, Call.incident))
        .group_by(bucket)
    )
    counts = {day: {"warned": 0, "ended_by_agent": 0, "incident": 0} for day in days}
    for index, warned, ended, incident in rows:
        if index < len(days):
            counts[days[index]] = {"warned": int(warned or 0), "ended_by_agent": int(ended or 0),
                                   "incident": int(incident or 0)}
    return counts


def marks_per_agent(session: Session, first: date, last: date, tz: tzinfo
                    ) -> list[tuple[int, str, int, int]]:
    """(agent id, name, warnings, calls ended) for each agent who warned or ended a call."""
    start, end = local_bounds(first, last, tz)
    warned = func.sum(case((Call.warned, 1), else_=0))
    ended = func.sum(case((Call.ended_by_agent, 1), else_=0))
    rows = session.execute(
        select(Call.agent_id, Staff.name, warned, ended)
        .join(Staff, Staff.id == Call.agent_id)
        .where(Call.started_at >= start, Call.started_at < end,
               or_(Call.warned, Call.ended_by_agent))
        .group_by(Call.agent_id, Staff.name)
        .order_by((warned + ended).desc(), Staff.name)
    )
    return [(agent_id, name, int(w or 0), int(e or 0)) for agent_id, name, w, e in rows]


@dataclass(frozen=True)
class RepeatCaller:
    """A number that called often (policy 4.6), and whether it is on the register."""

    number: str
    calls: int
    busiest_day: date | None
    busiest_day_calls: int
    customer_ref: str = ""
    over_day: bool = False
    over_week: bool = False


def top_callers(session: Session, first: date, last: date, tz: tzinfo, limit: int = 10
                ) -> list[tuple[str, int]]:
    """The numbers that called most between two local dates."""
    start, end = local_bounds(first, last, tz)
    count = func.count().label("calls")
    rows = session.execute(
        select(Call.from_number, count)
        .where(Call.started_at >= start, Call.started_at < end, Call.from_number.is_not(None))
        .group_by(Call.from_number)
        .order_by(count.desc(), Call.from_number)
        .limit(limit)
    )
    return [(number, int(n)) for number, n in rows]


def repeat_callers(session: Session, last: date, tz: tzinfo, per_day: int, per_week: int,
                   limit: int = 200) -> list[RepeatCaller]:
    """Numbers over `per_day` calls on a local day or `per_week` in the 7 days to `last`."""
    days = [last - timedelta(days=offset) for offset in range(6, -1, -1)]
    start, end = local_bounds(days[0], days[-1], tz)
    bucket = _day_bucket(days, tz).label("bucket")
    rows = session.execute(
        select(Call.from_number, bucket, func.count())
        .where(Call.started_at >= start, Call.started_at < end, Call.from_number.is_not(None))
        .group_by(Call.from_number, bucket)
    )
    per_number: dict[str, dict[int, int]] = {}
    for number, index, count in rows:
        per_number.setdefault(number, {})[index] = int(count)
    found: list[RepeatCaller] = []
    for number, by_day in per_number.items():
        total = sum(by_day.values())
        index, busiest = max(by_day.items(), key=lambda item: (item[1], item[0]))
        over_day, over_week = busiest > per_day, total > per_week
        if over_day or over_week:
            found.append(RepeatCaller(number, total, days[index] if index < 7 else None,
                                      busiest, over_day=over_day, over_week=over_week))
    found.sort(key=lambda r: (-r.calls, r.number))
    found = found[:limit]
    holders = register_refs(session, [r.number for r in found])
    return [replace(r, customer_ref=holders.get(r.number, "")) for r in found]


def register_refs(session: Session, numbers: Sequence[str]) -> dict[str, str]:
    """The customer reference of the unlifted entry holding each number, where there is one."""
    if not numbers:
        return {}
    rows = session.execute(
        select(EntryPhone.number, RegisterEntry.customer_ref)
        .join(RegisterEntry)
        .where(EntryPhone.number.in_(numbers), RegisterEntry.lifted_at.is_(None))
        .order_by(RegisterEntry.ends_on)
    )
    return {number: ref for number, ref in rows}


@dataclass(frozen=True)
class AbusiveEnd:
    """A call a member of staff ended for abuse or threats: which, when, and for what."""

    call_sid: str
    ended_at: datetime
    reason: EndReason


# A call's reason is given when it is ended, or afterwards as wrap-up (one-click ends).
_REASON_EVENTS = (EventKind.ENDED_BY_AGENT.value, EventKind.WRAP_UP.value)
# A call's end comes after its start: this much earlier lets the (number, started) index bound it.
_LONGEST_CALL = timedelta(days=1)


def last_abusive_ends(session: Session, numbers: Sequence[str], since: datetime,
                      exclude_sid: str | None = None) -> dict[str, AbusiveEnd]:
    """For each number, its last call ended by an agent for abuse or threats since `since`."""
    if not numbers:
        return {}
    query = (
        select(Call.from_number, CallEvent.call_sid, CallEvent.at, CallEvent.detail)
        .join(Call, Call.call_sid == CallEvent.call_sid)
        .where(Call.from_number.in_(numbers), Call.started_at >= since - _LONGEST_CALL,
               Call.ended_by_agent.is_(True), CallEvent.kind.in_(_REASON_EVENTS),
               CallEvent.at >= since)
        .order_by(CallEvent.at.desc(), CallEvent.id.desc())
    )
    if exclude_sid:
        query = query.where(Call.call_sid != exclude_sid)
    found: dict[str, AbusiveEnd] = {}
    for number, call_sid, at, detail in session.execute(query):
        reason = abuse_reason((detail or {}).get("reason"))
        if reason is not None and number not in found:
            found[number] = AbusiveEnd(call_sid, at, reason)
    return found


def last_abusive_end(session: Session, number: str, since: datetime,
                     exclude_sid: str | None = None) -> AbusiveEnd | None:
    """This number's last call ended by an agent for abuse or threats since `since`."""
    return last_abusive_ends(session, [number], since, exclude_sid).get(number)


def agents(session: Session) -> list[tuple[int, str]]:
    """Staff who may have been on a call, for the agent filter (administrators take none)."""
    on_calls = (Role.AGENT, Role.SUPERVISOR, Role.MANAGER)
    return [(i, n) for i, n in session.execute(
        select(Staff.id, Staff.name).where(Staff.role.in_(on_calls)).order_by(Staff.name)
    )]
