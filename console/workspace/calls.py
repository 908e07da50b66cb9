"""The call log: its filter form, the filtered pages, the CSV export and one call's timeline."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, tzinfo
from typing import Any
from urllib.parse import urlencode

from flask import Response, abort, request, stream_with_context
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from callflow.csv_cells import escape_cell
from callflow.events import EventKind
from callflow.phone import InvalidNumber, normalise
from callflow.plain_text import untypeable
from callflow.recording import may_hear_recordings
from callflow.register import FieldError, parse_date
from console.workspace import shared, workspace
from console.workspace.timeline import Step, describe, safe_link
from store import call_queries as q
from store.models import Incident, RegisterEntry, Staff
from usecases.recordings import warning_and_recording_log
from usecases.supervision import supervision_log

CSV_FLUSH_ROWS = 500
CSV_COLUMNS = (
    "call_sid", "started", "ended", "from_number", "withheld", "customer_ref", "decision",
    "agent", "status", "duration_seconds", "warned", "ended_by_agent", "incident", "emergency",
    "voicemail", "register_check_failed", "supervision", "warning_and_recording",
)
MARK_LABELS = {"warned": "Warned", "ended_by_agent": "Ended by agent", "incident": "Incident"}

# The call log's filters as the page labels them, for messages read away from the form (CSV).
FILTER_LABELS = {
    "from": "From date", "to": "To date", "number": "Number",
    "person": "Person of interest (reference)", "decision": "Decision", "agent": "Agent",
}
MAX_FILTER_CHARS = 64
_AGENT_ID = re.compile("[0-9]{1,9}")


@dataclass(frozen=True)
class FilterForm:
    """The call log's filter as typed, the filter it means, and what was wrong with it."""

    values: dict[str, Any]
    filter: q.CallFilter
    errors: dict[str, list[str]]


def _unusable(text: str) -> str | None:
    """Why a filter value cannot be used at all, or None."""
    if len(text) > MAX_FILTER_CHARS:
        return f"is too long (at most {MAX_FILTER_CHARS} characters)"
    if untypeable(text):
        return "has characters that cannot be used here"
    return None


def read_filter(session: Session, args: Mapping[str, Any]) -> FilterForm:
    """The log filter from a query string, with a message for each field that is wrong."""
    getlist = args.getlist if isinstance(args, MultiDict) else (lambda k: [args.get(k, "")])
    values = {k: (args.get(k) or "").strip() for k in FILTER_LABELS}
    values["mark"] = [m for m in getlist("mark") if m in q.MARKS]
    errors: list[FieldError] = []
    for name in FILTER_LABELS:
        problem = _unusable(values[name])
        if problem:
            errors.append(FieldError(name, problem))
            values[name] = ""  # never echoed back, nor looked up
    f = q.CallFilter(marks=frozenset(values["mark"]))

    def day(name: str) -> date | None:
        if not values[name]:
            return None
        try:
            parsed = parse_date(values[name])
        except ValueError as error:
            errors.append(FieldError(name, str(error)))
            return None
        if not shared.EARLIEST_DAY <= parsed <= shared.LATEST_DAY:
            errors.append(FieldError(name, "must be between the years 2000 and 2999"))
            return None
        return parsed

    f = replace(f, date_from=day("from"), date_to=day("to"))
    if f.date_from and f.date_to and f.date_from > f.date_to:
        errors.append(FieldError("to", "must not be before the start date"))
    if values["number"]:
        try:
            f = replace(f, number=normalise(values["number"]))
        except InvalidNumber as error:
            errors.append(FieldError("number", str(error)))
    if values["person"]:
        narrowed = q.with_person(session, f, values["person"])
        if narrowed is None:
            errors.append(FieldError("person", f"no register entry {values['person']}"))
        else:
            f = narrowed
    if values["decision"]:
        if values["decision"] in q.DECISION_FILTERS:
            f = replace(f, decision=values["decision"])
        else:
            errors.append(FieldError("decision", "is not one of the decisions listed"))
    if values["agent"]:
        if _AGENT_ID.fullmatch(values["agent"]):
            f = replace(f, agent_id=int(values["agent"]))
        else:
            errors.append(FieldError("agent", "choose an agent from the list"))
    return FilterForm(values, f, shared.errors_by_field(errors))


def query_string(values: Mapping[str, Any]) -> str:
    """The filter's values as a query string (for the paging links), leaving out empty ones."""
    pairs: list[tuple[str, object]] = []
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if item:
                pairs.append((key, item))
    return urlencode(pairs)


@workspace.get("/calls")
def calls() -> Response:
    """The call log: filtered, newest first, paged by keyset."""
    s = shared.services()
    try:
        after = q.Cursor.parse(request.args["after"]) if request.args.get("after") else None
        before = q.Cursor.parse(request.args["before"]) if request.args.get("before") else None
    except q.CursorInvalid:
        abort(400, "that page link is not valid; start again from the newest calls")
    with s.sessions() as session:
        form = read_filter(session, request.args)
        page = None
        if not form.errors:
            page = q.call_page(session, form.filter, s.settings.tz, after=after, before=before)
        agents = q.agents(session)
    return shared.render(
        "workspace/calls.html", form=form, page=page, agents=agents,
        query=query_string(form.values), decisions=q.DECISION_FILTERS, marks=MARK_LABELS,
        status=400 if form.errors else 200,
    )


# --- the CSV export ----------------------------------------------------------------------------


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def csv_line(values: Sequence[object]) -> str:
    """One CSV line, with any cell a spreadsheet would run as a formula written as text."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([escape_cell(v) for v in values])
    return out.getvalue()


def csv_record(row: q.CallRow, tz: tzinfo, supervision: str = "",
               warning_and_recording: str = "") -> tuple[object, ...]:
    """A call as the export's cells, in the order of CSV_COLUMNS (times in local time);
    supervision is its help and supervision steps in words (usecases.supervision), and
    warning_and_recording the warning as played, departures, voicemails and recordings."""
    return (
        row.call_sid,
        row.started_at.astimezone(tz).isoformat() if row.started_at else "",
        row.ended_at.astimezone(tz).isoformat() if row.ended_at else "",
        row.from_number or "", _yes(row.withheld), row.customer_ref, row.decision or "",
        row.agent_name, row.status or "", row.duration_seconds or "",
        _yes(row.warned), _yes(row.ended_by_agent), _yes(row.incident),
        _yes(row.emergency), _yes(row.voicemail), _yes(row.lookup_failed), supervision,
        warning_and_recording,
    )


def _csv_rows(form: FilterForm) -> Iterator[str]:
    s = shared.services()
    tz = s.settings.tz
    managers = may_hear_recordings(shared.me().role)  # recordings are for managers only
    yield csv_line(CSV_COLUMNS)
    chunk: list[q.CallRow] = []

    def lines(rows: list[q.CallRow]) -> str:
        sids = [row.call_sid for row in rows]
        steps = supervision_log(s, sids, tz)  # one query per chunk
        heard = warning_and_recording_log(s, sids, tz, with_recordings=managers)
        return "".join(csv_line(csv_record(row, tz, steps.get(row.call_sid, ""),
                                           heard.get(row.call_sid, ""))) for row in rows)

    with s.sessions() as session:
        for row in q.iter_calls(session, form.filter, tz):
            chunk.append(row)
            if len(chunk) >= CSV_FLUSH_ROWS:
                yield lines(chunk)
                chunk = []
    if chunk:
        yield lines(chunk)


def filter_errors_text(errors: Mapping[str, Sequence[str]]) -> str:
    """The filter's errors in one line of plain text, each under its field's label."""
    return "; ".join(f"{FILTER_LABELS.get(k, k)}: {', '.join(v)}" for k, v in errors.items())


@workspace.get("/calls.csv")
def calls_csv() -> Response:
    """The filtered log as CSV, streamed a batch at a time so any size of export fits."""
    with shared.services().sessions() as session:
        form = read_filter(session, request.args)
    if form.errors:
        return Response(filter_errors_text(form.errors), status=400, mimetype="text/plain")
    stamp = shared.now().astimezone(shared.services().settings.tz).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(_csv_rows(form)), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
    )


# --- one call ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStory:
    """One call with what its page shows: its timeline in words and its incidents."""

    call: q.CallRow
    steps: list[Step]
    incidents: list[Incident]
    names: dict[int, str]


def read_call(session: Session, call_sid: str) -> CallStory | None:
    """A call and its timeline in words, naming staff and register entries; None if unknown."""
    call = q.call_by_sid(session, call_sid)
    if call is None:
        return None
    events = q.timeline(session, call_sid)
    names = dict(session.execute(select(Staff.id, Staff.name)).all())
    entry_ids = {int(e.detail["entry_id"]) for e in events
                 if e.kind == "lookup" and e.detail.get("entry_id")}
    refs = dict(session.execute(
        select(RegisterEntry.id, RegisterEntry.customer_ref)
        .where(RegisterEntry.id.in_(entry_ids))).all()) if entry_ids else {}
    incidents = session.scalars(
        select(Incident).where(Incident.call_sid == call_sid).order_by(Incident.reported_at)
    ).all()
    return CallStory(call, [describe(e, names, refs) for e in events], list(incidents), names)


@workspace.get("/calls/<call_sid>")
def call_detail(call_sid: str) -> Response:
    """One call and its timeline of events."""
    with shared.services().sessions() as session:
        story = read_call(session, call_sid)
    if story is None:
        abort(404)
    # Issue 14: call recordings are evidence that only managers see and hear.
    steps = [step for step in story.steps if step.kind != EventKind.CALL_RECORDING
             or may_hear_recordings(shared.me().role)]
    return shared.render("workspace/call.html", call=story.call, steps=steps,
                         incidents=story.incidents, names=story.names,
                         recording=safe_link(story.call.recording_url))
