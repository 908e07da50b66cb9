"""The supervisors' and managers' workspace: call review, the register, notices and reviews.

Supervisors read everything here; only managers change the register (policy 5.2). Agents see
none of it. Every page is rendered on the server; times are shown in the centre's local time.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import redis
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from callflow import words
from callflow.csv_cells import escape_cell
from callflow.phone import InvalidNumber, display, normalise
from callflow.plain_text import untypeable
from callflow.register import (
    CATEGORY_LABELS,
    COLUMNS,
    FIELD_LABELS,
    LIFT_COLUMNS,
    VOICEMAIL,
    Category,
    EntryInvalid,
    FieldError,
    Status,
    entry_row,
    entry_status,
    parse_date,
    read_entry,
)
from config import clock
from console.auth import current_staff, restrict_blueprint, roles_required
from store import call_queries as q
from store.db import transaction
from store.models import AuditRecord, Call, Incident, Proposal, RegisterEntry, Staff
from store.register import RegisterStore, arrangements_text, diff, fields_of
from usecases.bootstrap import Services, services_of
from usecases.notices import NoticeRefused, Notices, needs_new_notice
from usecases.upkeep import record_review, reviews_due, without_notice

workspace = Blueprint("workspace", __name__, url_prefix="/workspace",
                      template_folder="templates")

READERS = ("supervisor", "manager", "admin")
DECIDERS = ("manager",)  # policy 5.2: all decisions to restrict contact are the manager's
restrict_blueprint(workspace, *READERS)

DASHBOARD_DAYS = 14
CSV_FLUSH_ROWS = 500
CSV_COLUMNS = (
    "call_sid", "started", "ended", "from_number", "withheld", "customer_ref", "decision",
    "agent", "status", "duration_seconds", "warned", "ended_by_agent", "incident", "emergency",
    "voicemail", "register_check_failed",
)
MARK_LABELS = {"warned": "Warned", "ended_by_agent": "Ended by agent", "incident": "Incident"}
STATUS_LABELS = {s.value: s.value.title() for s in Status}


def _services() -> Services:
    return services_of(current_app)


def _me() -> Staff:
    staff = current_staff()
    if staff is None:  # the blueprint's rule has already refused anyone signed out
        abort(401)
    return staff


def _now() -> datetime:
    return clock.now_utc()


def _today(now: datetime | None = None) -> date:
    return clock.local_today(_services().settings.tz, now)


def _local(moment: datetime | None, seconds: bool = False) -> str:
    """An instant in the centre's local time, as staff read it."""
    if moment is None:
        return ""
    return words.local_moment(moment, _services().settings.tz, seconds)


def _day(value: date | None) -> str:
    return words.short_date(value)


def _stored_value(value: object) -> str:
    return words.stored_value(value, _services().settings.tz)


# The words module's rules as Jinja filters, so every template says things the same way.
for _name, _filter in (("audit_action", words.audit_action), ("change_name", words.change_name),
                       ("stored_value", _stored_value), ("reason_label", words.reason),
                       ("phone", display), ("role_label", words.role_name),
                       ("words", words.humanise)):
    workspace.add_app_template_filter(_filter, _name)


def _is_manager() -> bool:
    return _me().role in DECIDERS


@workspace.before_request
def _refuse_untypeable_input() -> None:
    """A NUL or other control character in a form field or an address is nothing a person typed
    and the database may refuse it: a 400 naming the field, before any view sees it."""
    # The call log's filters are checked by their own view, which shows the error beside them.
    sources = (((request.view_args or {}).items(), False), (request.form.items(multi=True), True))
    for pairs, multi_line in sources:
        for name, value in pairs:
            if isinstance(value, str) and untypeable(value, keep_lines=multi_line):
                label = FIELD_LABELS.get(name) or name.replace("_", " ")
                abort(400, f"{label.capitalize()} contains a character that cannot be typed "
                           "or stored (such as a null character); remove it and try again.")


@workspace.errorhandler(redis.RedisError)
def _store_unavailable(error: redis.RedisError) -> Response:
    """A register write refused because Redis did not answer: nothing was saved (503)."""
    return _render("workspace/unavailable.html", status=503)


def _render(template: str, status: int = 200, **context: Any) -> Response:
    html = render_template(
        template, local=_local, day=_day, is_manager=_is_manager(),
        decision_labels=q.DECISION_LABELS, category_labels=CATEGORY_LABELS, **context,
    )
    return Response(html, status=status, mimetype="text/html")


def _errors_by_field(errors: Iterable[FieldError]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in errors:
        found.setdefault(error.field, []).append(error.message)
    return found


@workspace.get("/")
def index() -> Response:
    """The workspace starts at the call log."""
    return redirect(url_for(".calls"), code=303)


# --- the call log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterForm:
    """The call log's filter as typed, the filter it means, and what was wrong with it."""

    values: dict[str, Any]
    filter: q.CallFilter
    errors: dict[str, list[str]]


# The call log's filters as the page labels them, for messages read away from the form (CSV).
FILTER_LABELS = {
    "from": "From date", "to": "To date", "number": "Number",
    "person": "Person of interest (reference)", "decision": "Decision", "agent": "Agent",
}
MAX_FILTER_CHARS = 64
_AGENT_ID = re.compile("[0-9]{1,9}")
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)


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
        if not EARLIEST_DAY <= parsed <= LATEST_DAY:
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
    return FilterForm(values, f, _errors_by_field(errors))


def _query(values: Mapping[str, Any], **extra: object) -> str:
    pairs: list[tuple[str, object]] = []
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if item:
                pairs.append((key, item))
    pairs += [(k, v) for k, v in extra.items() if v]
    return urlencode(pairs)


@workspace.get("/calls")
def calls() -> Response:
    """The call log: filtered, newest first, paged by keyset."""
    s = _services()
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
    query = _query(form.values)
    return _render(
        "workspace/calls.html", form=form, page=page, agents=agents, query=query,
        decisions=q.DECISION_FILTERS, marks=MARK_LABELS,
        status=400 if form.errors else 200,
    )


def _csv_line(values: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([escape_cell(v) for v in values])
    return out.getvalue()


def _csv_rows(form: FilterForm) -> Iterator[str]:
    s = _services()
    tz = s.settings.tz
    yield _csv_line(CSV_COLUMNS)
    chunk: list[str] = []
    with s.sessions() as session:
        for row in q.iter_calls(session, form.filter, tz):
            chunk.append(_csv_line((
                row.call_sid,
                row.started_at.astimezone(tz).isoformat() if row.started_at else "",
                row.ended_at.astimezone(tz).isoformat() if row.ended_at else "",
                row.from_number or "", _yes(row.withheld), row.customer_ref, row.decision or "",
                row.agent_name, row.status or "", row.duration_seconds or "",
                _yes(row.warned), _yes(row.ended_by_agent), _yes(row.incident),
                _yes(row.emergency), _yes(row.voicemail), _yes(row.lookup_failed),
            )))
            if len(chunk) >= CSV_FLUSH_ROWS:
                yield "".join(chunk)
                chunk = []
    if chunk:
        yield "".join(chunk)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@workspace.get("/calls.csv")
def calls_csv() -> Response:
    """The filtered log as CSV, streamed a batch at a time so any size of export fits."""
    with _services().sessions() as session:
        form = read_filter(session, request.args)
    if form.errors:
        messages = "; ".join(f"{FILTER_LABELS.get(k, k)}: {', '.join(v)}"
                             for k, v in form.errors.items())
        return Response(messages, status=400, mimetype="text/plain")
    stamp = _now().astimezone(_services().settings.tz).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(_csv_rows(form)), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
    )


@dataclass(frozen=True)
class Step:
    """One line of a call's timeline, in words."""

    at: datetime
    kind: str
    title: str
    text: str = ""
    link: str = ""
    quiet: bool = False


def _staff_name(names: Mapping[int, str], value: object) -> str:
    try:
        return names.get(int(value), f"staff {value}")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "someone"


def _safe_link(url: object) -> str:
    text = str(url or "")
    return text if text.startswith(("https://", "http://")) else ""


_ENTRY_ID_PREFIX = re.compile(r"^register entry \d+: ")


def describe(event: q.TimelineEvent, names: Mapping[int, str], refs: Mapping[int, str]) -> Step:
    """A timeline event in words a supervisor reads without knowing the event schema."""
    d = event.detail
    kind = event.kind
    who = _staff_name(names, d.get("staff_id")) if d.get("staff_id") is not None else ""
    extra = "; ".join(part for part in (
        words.reason(d["category"]) if d.get("category") else "",
        f"note: {d['note']}" if d.get("note") else "",
        f"police reference {d['police_reference']}" if d.get("police_reference") else "",
    ) if part)
    if kind == "received":
        caller = display(str(d["from"])) if d.get("from") else "an unknown number"
        source = "number withheld" if d.get("withheld") else f"from {caller}"
        return Step(event.at, kind, "Call received", source)
    if kind == "lookup":
        if d.get("failed"):
            return Step(event.at, kind, "Register check failed",
                        "the register could not be read; the call was routed as normal")
        entry = d.get("entry_id")
        found = (f"on the register: {refs.get(int(entry), 'an entry since removed')}" if entry
                 else "not on the register")
        return Step(event.at, kind, "Register checked", found)
    if kind == "decision":
        label = q.DECISION_LABELS.get(str(d.get("outcome")), str(d.get("outcome")))
        # The reason names the entry by its row id ("register entry 3: ..."); the lookup step
        # above already names it by customer reference.
        why = _ENTRY_ID_PREFIX.sub("", str(d.get("reason", "")))
        return Step(event.at, kind, f"Decision: {label}", why)
    if kind == "emergency":
        return Step(event.at, kind, "Emergency option chosen", str(d.get("reason", "")))
    if kind == "emergency_declined":
        pressed = f"pressed {d['digits']}" if d.get("digits") else "pressed nothing"
        return Step(event.at, kind, "Emergency option not chosen", pressed)
    if kind == "emergency_ended":
        return Step(event.at, kind, "Emergency line call ended",
                    words.label(d.get("dial_status", ""), words.STATUS_LABELS))
    if kind == "dialled":
        return Step(event.at, kind, f"Rang {who}",
                    f"as {words.label(d.get('leg', ''), words.LEG_LABELS)}" if d.get("leg") else "")
    if kind == "dial_refused":
        return Step(event.at, kind, f"Could not ring {who}", str(d.get("message", "")))
    if kind == "no_answer":
        return Step(event.at, kind, f"{who} did not answer",
                    f"{words.label(d.get('status', ''), words.STATUS_LABELS)}; "
                    f"next: {words.humanise(d.get('next', ''))}")
    if kind == "connected":
        return Step(event.at, kind, f"Connected to {who}",
                    f"as {words.label(d.get('leg', ''), words.LEG_LABELS)}" if d.get("leg") else "")
    if kind == "agent_left":
        return Step(event.at, kind, f"{who} left the call")
    if kind == "voicemail_offered":
        return Step(event.at, kind, "Voicemail offered")
    if kind == "voicemail":
        seconds = d.get("duration")
        return Step(event.at, kind, "Voicemail left",
                    f"{seconds} seconds" if seconds else "", _safe_link(d.get("recording_url")))
    if kind == "recording":
        return Step(event.at, kind, f"Recording {words.humanise(d.get('status', ''))}".strip(), "",
                    _safe_link(d.get("recording_url")), quiet=True)
    if kind == "status":
        duration = d.get("duration")
        return Step(event.at, kind, f"Call {words.label(d.get('status'), words.STATUS_LABELS)}",
                    f"{duration} seconds" if duration is not None else "")
    if kind == "warning":
        return Step(event.at, kind, f"Warning given by {who or 'the agent'}", extra)
    if kind == "ended_by_agent":
        why = words.reason(d["reason"]) if d.get("reason") else "no reason given"
        note = f"; note: {d['note']}" if d.get("note") else ""
        return Step(event.at, kind, f"Ended by the agent: {why}", f"{who or 'the agent'}{note}")
    if kind == "wrap_up":
        why = words.reason(d["reason"]) if d.get("reason") else "no reason given"
        note = f"; note: {d['note']}" if d.get("note") else ""
        return Step(event.at, kind, f"Reason for ending given: {why}",
                    f"{who or 'the agent'}{note}")
    if kind in ("designated_contact_away", "fallback_contact_away"):
        role = "designated contact" if kind.startswith("designated") else "fallback contact"
        return Step(event.at, kind, f"{who or 'The ' + role} not rung",
                    f"the {role} was away or signed out, so the call moved on")
    if kind == "incident":
        return Step(event.at, kind, "Incident reported", extra)
    if kind == "conference":
        return Step(event.at, kind, words.label(d.get("event", ""), words.CONFERENCE_LABELS),
                    quiet=True)
    if kind == "fallback":
        return Step(event.at, kind, "Fallback route used",
                    f"Twilio error {d.get('error')}" if d.get("error") else "")
    rest = "; ".join(f"{words.humanise(k)}: {words.humanise(v)}" for k, v in d.items()
                     if k != "staff_id")
    return Step(event.at, kind, words.humanise(kind).capitalize(), rest)


@workspace.get("/calls/<call_sid>")
def call_detail(call_sid: str) -> Response:
    """One call and its timeline of events."""
    with _services().sessions() as session:
        call = q.call_by_sid(session, call_sid)
        if call is None:
            abort(404)
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
    steps = [describe(e, names, refs) for e in events]
    return _render("workspace/call.html", call=call, steps=steps, incidents=incidents,
                   names=names, recording=_safe_link(call.recording_url))


# --- the dashboard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """A rectangle of a chart."""

    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Chart:
    """A chart laid out for an SVG template: bars, axis labels and a legend."""

    label: str
    width: int
    height: int
    bars: list[Bar]
    x_labels: list[tuple[float, float, str]]
    y_ticks: list[tuple[float, str]]
    legend: list[tuple[str, str]]
    plot_left: float
    plot_right: float
    plot_bottom: float
    empty: bool


def nice_ceiling(value: int, steps: int = 4) -> int:
    """The smallest 1-2-5 round number at least `value` that splits into `steps` whole steps."""
    if value <= 0:
        return steps
    raw = value / steps
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        step = max(1, factor * power)
        if step * steps >= value:
            return int(step * steps)
    return int(10 * power * steps)


def day_chart(label: str, days: Sequence[date], counts: Mapping[date, Mapping[str, int]],
              series: Sequence[tuple[str, str]], stacked: bool = True,
              width: int = 760, height: int = 260) -> Chart:
    """Bars per local day, stacked or side by side, one colour per series."""
    left, right, top, bottom = 44, width - 10, 12, height - 40
    totals = [sum(counts[d].get(k, 0) for k, _ in series) if stacked
              else max([counts[d].get(k, 0) for k, _ in series] or [0]) for d in days]
    ceiling = nice_ceiling(max(totals or [0]))
    slot = (right - left) / max(len(days), 1)
    bar_width = slot * 0.7
    scale = (bottom - top) / ceiling
    bars: list[Bar] = []
    x_labels = []
    for i, d in enumerate(days):
        x0 = left + i * slot + (slot - bar_width) / 2
        base = bottom
        for j, (key, name) in enumerate(series):
            value = counts[d].get(key, 0)
            if not value:
                continue
            h = value * scale
            if stacked:
                base -= h
                bars.append(Bar(x0, base, bar_width, h, f"s-{key}", f"{_day(d)}: {name} {value}"))
            else:
                w = bar_width / len(series)
                bars.append(Bar(x0 + j * w, bottom - h, w, h, f"s-{key}",
                                f"{_day(d)}: {name} {value}"))
        x_labels.append((left + i * slot + slot / 2, bottom + 16, f"{d.day} {d:%b}"))
    ticks = [(bottom - (ceiling * k / 4) * scale, str(int(ceiling * k / 4))) for k in range(5)]
    return Chart(label, width, height, bars, x_labels, ticks, _legend(bars, series),
                 left, right, bottom, not any(totals))


# The chart's 11px labels: a digit or letter is at most about 7px wide in the sans-serif fonts.
LABEL_CHAR_WIDTH = 7.0
LABEL_MIN_WIDTH = 150


def bar_list_chart(label: str, items: Sequence[tuple[str, Mapping[str, int]]],
                   series: Sequence[tuple[str, str]], width: int = 460) -> Chart:
    """Horizontal bars, one row per item (an agent, a number), stacked by series; the label
    column is as wide as its longest label, and the chart widens to keep the plot's width."""
    row = 24
    longest = max((len(name) for name, _ in items), default=0)
    left = max(LABEL_MIN_WIDTH, math.ceil(longest * LABEL_CHAR_WIDTH) + 16)
    width += max(0, left - 150)
    right, top = width - 16, 8
    height = top + row * max(len(items), 1) + 30
    totals = [sum(v.get(k, 0) for k, _ in series) for _, v in items]
    ceiling = nice_ceiling(max(totals or [0]))
    scale = (right - left) / ceiling
    bars: list[Bar] = []
    labels = []
    for i, (name, values) in enumerate(items):
        y = top + i * row + 4
        x = left
        for key, series_name in series:
            value = values.get(key, 0)
            if value:
                bars.append(Bar(x, y, value * scale, row - 8, f"s-{key}",
                                f"{name}: {series_name} {value}"))
                x += value * scale
        labels.append((left - 8, y + row / 2, name))
    bottom = top + row * max(len(items), 1)
    ticks = [(left + (ceiling * k / 4) * scale, str(int(ceiling * k / 4))) for k in range(5)]
    return Chart(label, width, height, bars, labels, ticks, _legend(bars, series),
                 left, right, bottom, not any(totals))


def _legend(bars: Sequence[Bar], series: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    drawn = {bar.css for bar in bars}
    return [(f"s-{key}", name) for key, name in series if f"s-{key}" in drawn]


DECISION_SERIES = [(o, q.DECISION_LABELS[o]) for o in (
    "centre", "within_window", "designated_contact", "outside_window", "written_only", "closed",
    "withheld", "register_check_failed")] + [("unknown", "Not recorded")]
MARK_SERIES = [("warned", "Warnings"), ("ended_by_agent", "Ended by agent"),
               ("incident", "Incidents")]


@workspace.get("/dashboard")
def dashboard() -> Response:
    """Charts of the last fortnight, repeated-contact leaders, and what managers must look at."""
    s = _services()
    tz = s.settings.tz
    today = _today()
    days = [today - timedelta(days=n) for n in range(DASHBOARD_DAYS - 1, -1, -1)]
    with s.sessions() as session:
        per_day = q.calls_per_day(session, days, tz)
        marks = q.marks_per_day(session, days, tz)
        per_agent = q.marks_per_agent(session, days[0], days[-1], tz)
        leaders = q.top_callers(session, today - timedelta(days=6), today, tz)
        holders = q.register_refs(session, [n for n, _ in leaders])
        due = reviews_due(session, today)
        unsent = without_notice(session, today)
        open_proposals = session.scalar(
            select(func.count(Proposal.id)).where(Proposal.status == "open"))
        open_incidents = session.scalar(
            select(func.count(Incident.id)).where(Incident.status == "open"))
    charts = [
        day_chart("Calls per day by decision", days, per_day, DECISION_SERIES),
        day_chart("Warnings, calls ended by agents and incidents per day", days, marks,
                  MARK_SERIES, stacked=False),
        bar_list_chart("Warnings and calls ended, per agent (last 14 days)",
                       [(name, {"warned": w, "ended_by_agent": e})
                        for _, name, w, e in per_agent], MARK_SERIES[:2]),
        bar_list_chart("Repeated-contact leaders (last 7 days)",
                       [(f"{display(n)} ({holders[n]})" if n in holders else display(n),
                         {"register" if n in holders else "other": c}) for n, c in leaders],
                       [("other", "Not on the register"), ("register", "On the register")]),
    ]
    return _render("workspace/dashboard.html", charts=charts, due=due, unsent=unsent,
                   open_proposals=open_proposals, open_incidents=open_incidents, today=today)


@workspace.get("/repeat-callers")
def repeat_callers() -> Response:
    """Numbers calling more than the configured times a day or week (policy 4.6)."""
    s = _services()
    try:
        last = parse_date(request.args["to"]) if request.args.get("to") else _today()
    except ValueError as error:
        abort(400, str(error))
    if not EARLIEST_DAY <= last <= LATEST_DAY:
        abort(400, f"The date must be between {EARLIEST_DAY.year} and {LATEST_DAY.year}.")
    with s.sessions() as session:
        found = q.repeat_callers(session, last, s.settings.tz, s.settings.repeat_calls_per_day,
                                 s.settings.repeat_calls_per_week)
    return _render("workspace/repeat_callers.html", found=found, last=last,
                   first=last - timedelta(days=6), per_day=s.settings.repeat_calls_per_day,
                   per_week=s.settings.repeat_calls_per_week)


# --- the register ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryLine:
    """An entry in the register list, with its status and what needs doing."""

    customer_ref: str
    name: str
    status: str
    starts_on: date
    ends_on: date
    review_on: date | None
    notice_sent_on: date | None
    arrangements: str
    review_due: bool
    needs_notice: bool


@workspace.get("/register")
def register() -> Response:
    """Every entry, filtered by status, with reviews due and notices unsent flagged."""
    today = _today()
    wanted = request.args.get("status", "current")
    search = request.args.get("q", "").strip().lower()
    horizon = today + timedelta(days=14)
    lines = []
    with _services().sessions() as session:
        for entry in RegisterStore(session).entries():
            if entry.anonymised_at is not None:
                continue
            status = entry_status(entry.starts_on, entry.ends_on, entry.lifted_at, today).value
            if wanted == "current" and status not in ("active", "upcoming"):
                continue
            if wanted not in ("current", "all") and status != wanted:
                continue
            if search and search not in entry.customer_ref.lower() and search not in (
                    entry.name or "").lower():
                continue
            live = status in ("active", "upcoming")
            lines.append(EntryLine(
                entry.customer_ref, entry.name or "", status, entry.starts_on, entry.ends_on,
                entry.review_on, entry.notice_sent_on, arrangements_text(entry),
                live and entry.review_on is not None and entry.review_on <= horizon,
                live and entry.notice_sent_on is None,
            ))
    return _render("workspace/register.html", lines=lines, wanted=wanted, search=search,
                   statuses=["current", "active", "upcoming", "lapsed", "lifted", "all"])


def _audit_lines(session, entry_id: int) -> list[AuditRecord]:
    return list(session.scalars(
        select(AuditRecord).where(AuditRecord.entry_id == entry_id)
        .order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
    ))


def _entry_page(customer_ref: str, status: int = 200, lift_errors=None,
                lift_reason: str = "", sent_errors=None) -> Response:
    s = _services()
    today = _today()
    with s.sessions() as session:
        entry = RegisterStore(session).get(customer_ref)
        if entry is None or entry.anonymised_at is not None:
            abort(404)
        fields = fields_of(entry)
        audit = _audit_lines(session, entry.id)
        lifted_by = entry.lifted_by.name if entry.lifted_by else ""
        calls_recent = q.call_page(session, q.with_person(session, q.CallFilter(), customer_ref),
                                   s.settings.tz, size=10).rows
        state = entry_status(entry.starts_on, entry.ends_on, entry.lifted_at, today).value
        arrangements = arrangements_text(entry)
    notices = Notices(s.register, s.settings).for_customer(customer_ref)
    return _render(
        "workspace/entry.html", status=status, entry=entry, fields=fields, audit=audit,
        state=state, arrangements=arrangements, lifted_by=lifted_by, notices=notices,
        calls=calls_recent, today=today, lift_errors=lift_errors or {},
        lift_reason=lift_reason, sent_errors=sent_errors or {},
        review_due=(state in ("active", "upcoming") and entry.review_on is not None
                    and entry.review_on <= today + timedelta(days=14)),
    )


@workspace.get("/register/<customer_ref>")
def entry(customer_ref: str) -> Response:
    """One entry: its arrangements, notices, recent calls and audit history."""
    return _entry_page(customer_ref)


def _staff_choices() -> tuple[list[Staff], list[Staff]]:
    with _services().sessions() as session:
        people = session.scalars(select(Staff).where(Staff.active).order_by(Staff.name)).all()
    return list(people), [p for p in people if p.role == "manager"]


def form_row(form: MultiDict) -> dict[str, str]:
    """The register's text fields (as parse_entry reads them) from the entry form."""
    def lines(name: str) -> str:
        return "; ".join(p.strip() for p in form.get(name, "").replace(";", "\n").splitlines()
                         if p.strip())

    row = {name: form.get(name, "").strip() for name in COLUMNS}
    row["phone_numbers"] = lines("phone_numbers")
    row["closed_issues"] = lines("closed_issues")
    row["categories"] = "; ".join(form.getlist("categories"))
    row["written_only"] = "yes" if form.get("written_only") else "no"
    row["visits_by_appointment"] = "yes" if form.get("visits_by_appointment") else "no"
    for name in LIFT_COLUMNS:  # lifting has its own form, with its own checks
        row[name] = ""
    return row


def _form_values(row: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = dict(row)
    values["phone_numbers"] = "\n".join(p.strip() for p in row.get("phone_numbers", "")
                                        .split(";") if p.strip())
    values["closed_issues"] = "\n".join(p.strip() for p in row.get("closed_issues", "")
                                        .split(";") if p.strip())
    values["categories"] = [c.strip() for c in row.get("categories", "").split(";") if c.strip()]
    values["written_only"] = row.get("written_only") == "yes"
    values["visits_by_appointment"] = row.get("visits_by_appointment") == "yes"
    return values


def _entry_form(values: Mapping[str, Any], errors: Mapping[str, list[str]], editing: bool,
                status: int = 200, proposal_id: str = "") -> Response:
    people, managers = _staff_choices()
    return _render("workspace/entry_form.html", status=status, values=values, errors=errors,
                   editing=editing, people=people, managers=managers, voicemail=VOICEMAIL,
                   categories=list(Category), proposal_id=proposal_id)


def _check(row: Mapping[str, str], today: date, creating: bool):
    fields, problems = read_entry(row)
    with _services().sessions() as session:
        store = RegisterStore(session)
        if creating and fields.customer_ref and store.get(fields.customer_ref) is not None:
            problems.append(FieldError(
                "customer_ref", f"{fields.customer_ref} is already on the register; "
                                "edit that entry instead"))
        problems += store.validate(fields, today, unreadable={p.field for p in problems})
    return (None if problems else fields), problems


def _save_and_notify(fields, actor: Staff, creating: bool) -> tuple[bool, str]:
    """Save through the register service; produce a notice when the customer must be told."""
    s = _services()
    now = _now()
    today = _today(now)
    renotify = creating
    if not creating:
        with s.sessions() as session:
            before = fields_of(RegisterStore(session).get(fields.customer_ref))
        changes = diff(before, fields)
        renotify = needs_new_notice(changes)
        # policy 5.1: changed arrangements are told in writing, so the old sending date lapses.
        fields = replace(fields, notice_sent_on=None if renotify else before.notice_sent_on)
    result = s.register.save(fields, actor.email, now, today)
    if renotify and result.action != "unchanged":
        Notices(s.register, s.settings).produce_restriction(fields.customer_ref, actor.id, now,
                                                            today)
    return renotify and result.action != "unchanged", result.action


@workspace.route("/register/new", methods=["GET", "POST"])
@roles_required(*DECIDERS)
def entry_new() -> Response:
    """Put a customer on the register (a manager's decision, policy 5.2)."""
    me = _me()
    today = _today()
    proposal_id = request.values.get("proposal", "")
    if request.method == "GET":
        values: dict[str, Any] = {
            "decided_by": me.email, "decided_on": today.isoformat(),
            "starts_on": today.isoformat(), "categories": [],
        }
        if proposal_id.isdigit():
            values.update(_proposal_values(int(proposal_id)))
        return _entry_form(values, {}, editing=False, proposal_id=proposal_id)
    row = form_row(request.form)
    fields, problems = _check(row, today, creating=True)
    if problems:
        return _entry_form(_form_values(row), _errors_by_field(problems), editing=False,
                           status=422, proposal_id=proposal_id)
    try:
        _save_and_notify(fields, me, creating=True)
    except EntryInvalid as refused:
        return _entry_form(_form_values(row), _errors_by_field(refused.errors), editing=False,
                           status=422, proposal_id=proposal_id)
    if proposal_id.isdigit():
        _close_proposal(int(proposal_id), "accepted", me, "entry created",
                        fields.customer_ref)
    flash(f"{fields.customer_ref} is on the register. A notice has been produced: print or "
          "send it, then mark it sent.", "info")
    return redirect(url_for(".entry", customer_ref=fields.customer_ref), code=303)


@workspace.route("/register/<customer_ref>/edit", methods=["GET", "POST"])
@roles_required(*DECIDERS)
def entry_edit(customer_ref: str) -> Response:
    """Change an entry's arrangements; a change the customer must be told produces a notice."""
    me = _me()
    today = _today()
    with _services().sessions() as session:
        entry = RegisterStore(session).get(customer_ref)
        if entry is None or entry.anonymised_at is not None:
            abort(404)
        current = fields_of(entry)
        lifted = entry.lifted_at is not None
    if lifted:
        flash(f"{customer_ref} was lifted and can no longer be changed.", "error")
        return redirect(url_for(".entry", customer_ref=customer_ref), code=303)
    if request.method == "GET":
        return _entry_form(_form_values(entry_row(current)), {}, editing=True)
    row = form_row(request.form)
    row["customer_ref"] = customer_ref
    row["notice_sent_on"] = entry_row(current)["notice_sent_on"]
    fields, problems = _check(row, today, creating=False)
    if problems:
        return _entry_form(_form_values(row), _errors_by_field(problems), editing=True,
                           status=422)
    try:
        renotified, action = _save_and_notify(fields, me, creating=False)
    except EntryInvalid as refused:
        return _entry_form(_form_values(row), _errors_by_field(refused.errors), editing=True,
                           status=422)
    if action == "unchanged":
        flash("Nothing was changed.", "info")
    elif renotified:
        flash("Saved. The arrangements changed, so a new notice has been produced: print or "
              "send it, then mark it sent.", "info")
    else:
        flash("Saved.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


@workspace.post("/register/<customer_ref>/lift")
@roles_required(*DECIDERS)
def entry_lift(customer_ref: str) -> Response:
    """Lift an entry before its end date, with the reason."""
    reason = request.form.get("reason", "").strip()
    try:
        _services().register.lift(customer_ref, _me().email, reason, _now())
    except LookupError:
        abort(404)
    except EntryInvalid as refused:
        return _entry_page(customer_ref, 422, lift_errors=_errors_by_field(refused.errors),
                           lift_reason=reason)
    except PermissionError as refused:
        abort(403, str(refused))
    flash(f"{customer_ref} is lifted; calls from its numbers are routed as normal.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


@workspace.route("/register/<customer_ref>/review", methods=["GET", "POST"])
@roles_required(*DECIDERS)
def entry_review(customer_ref: str) -> Response:
    """Record a review: what it found, the next review date and, if changed, the end date."""
    today = _today()
    with _services().sessions() as session:
        entry = RegisterStore(session).get(customer_ref)
        if entry is None or entry.anonymised_at is not None:
            abort(404)
        fields = fields_of(entry)
    values = {"review_on": "", "ends_on": fields.ends_on.isoformat(), "note": ""}
    if request.method == "GET":
        return _render("workspace/review.html", fields=fields, values=values, errors={})
    values = {k: request.form.get(k, "").strip() for k in values}
    problems: list[FieldError] = []
    next_review = ends_on = None
    for name in ("review_on", "ends_on"):
        if not values[name]:
            if name == "review_on":
                problems.append(FieldError(name, "is required"))
            continue
        try:
            parsed = parse_date(values[name])
        except ValueError as error:
            problems.append(FieldError(name, str(error)))
            continue
        if name == "review_on":
            next_review = parsed
        else:
            ends_on = parsed
    now = _now()
    try:
        if problems or next_review is None:
            raise EntryInvalid(problems)
        renotify = record_review(_services().register, customer_ref, _me().email, next_review,
                                 ends_on, values["note"], now, today)
    except EntryInvalid as refused:
        return _render("workspace/review.html", status=422, fields=fields, values=values,
                       errors=_errors_by_field(refused.errors))
    if renotify:
        Notices(_services().register, _services().settings).produce_restriction(
            customer_ref, _me().id, now, today)
        flash("Review recorded. A new notice has been produced for the customer.", "info")
    else:
        flash("Review recorded.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


# --- notices -----------------------------------------------------------------------------------


@workspace.post("/register/<customer_ref>/notices")
@roles_required(*DECIDERS)
def notice_new(customer_ref: str) -> Response:
    """Produce the restriction notice for an entry's current arrangements."""
    s = _services()
    now = _now()
    try:
        Notices(s.register, s.settings).produce_restriction(customer_ref, _me().id, now,
                                                            _today(now))
    except NoticeRefused as refused:
        flash(str(refused), "error")
    else:
        flash("Notice produced.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


@workspace.get("/notices/<int:notice_id>.pdf")
def notice_pdf(notice_id: int) -> Response:
    """A notice as a PDF to print or send."""
    s = _services()
    try:
        notice, pdf = Notices(s.register, s.settings).pdf(notice_id)
    except NoticeRefused:
        abort(404)
    ref = re.sub(r"[^A-Za-z0-9._-]", "_", notice.customer_ref)
    name = f"{notice.kind}-notice-{ref}-{notice.id}.pdf"
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@workspace.post("/notices/<int:notice_id>/sent")
@roles_required(*DECIDERS)
def notice_sent(notice_id: int) -> Response:
    """Record the day a notice was sent; the entry's notice date follows (audited)."""
    s = _services()
    notices = Notices(s.register, s.settings)
    notice = notices.get(notice_id)
    if notice is None:
        abort(404)
    now = _now()
    raw = request.form.get("sent_on", "").strip()
    try:
        sent_on = parse_date(raw) if raw else _today(now)
        notices.mark_sent(notice_id, sent_on, _me().email, now, _today(now))
    except ValueError as error:
        errors = error.errors if isinstance(error, EntryInvalid) else [
            FieldError("sent_on", str(error))]
        if notice.entry_id is not None and notice.kind == "restriction":
            return _entry_page(notice.customer_ref, 422, sent_errors=_errors_by_field(errors))
        flash("; ".join(map(str, errors)), "error")
        return redirect(url_for(".queue"), code=303)
    flash(f"Notice recorded as sent on {_day(sent_on)}.", "info")
    if notice.kind == "restriction" and notice.entry_id is not None:
        return redirect(url_for(".entry", customer_ref=notice.customer_ref), code=303)
    return redirect(url_for(".warning_view", notice_id=notice_id), code=303)


@workspace.route("/notices/warning", methods=["GET", "POST"])
@roles_required(*DECIDERS)
def warning_new() -> Response:
    """A warning letter before any restriction (policy 5.1: the chance to change)."""
    proposal_id = request.values.get("proposal", "")
    if request.method == "GET":
        values: dict[str, Any] = {"customer_ref": "", "name": "", "categories": [],
                                  "details": ""}
        if proposal_id.isdigit():
            found = _proposal_values(int(proposal_id))
            values.update(customer_ref=found.get("customer_ref", ""),
                          categories=found.get("categories", []),
                          details=found.get("reason", ""))
        return _render("workspace/warning_form.html", values=values, errors={},
                       categories=list(Category), proposal_id=proposal_id)
    values = {k: request.form.get(k, "").strip() for k in ("customer_ref", "name", "details")}
    values["categories"] = request.form.getlist("categories")
    s = _services()
    now = _now()
    try:
        notice_id = Notices(s.register, s.settings).produce_warning(
            values["customer_ref"], values["name"], values["categories"], values["details"],
            _me().id, now, _today(now))
    except EntryInvalid as refused:
        return _render("workspace/warning_form.html", status=422, values=values,
                       errors=_errors_by_field(refused.errors), categories=list(Category),
                       proposal_id=proposal_id)
    if proposal_id.isdigit():
        _close_proposal(int(proposal_id), "warned", _me(), "warning letter produced", None)
    flash("Warning letter produced: print or send it, then mark it sent.", "info")
    return redirect(url_for(".warning_view", notice_id=notice_id), code=303)


@workspace.get("/notices/<int:notice_id>")
def warning_view(notice_id: int) -> Response:
    """A produced notice: its text, its PDF and whether it was sent."""
    s = _services()
    notice = Notices(s.register, s.settings).get(notice_id)
    if notice is None:
        abort(404)
    return _render("workspace/notice.html", notice=notice, today=_today())


# --- proposals and incidents -------------------------------------------------------------------


def _proposal_values(proposal_id: int) -> dict[str, Any]:
    with _services().sessions() as session:
        proposal = session.get(Proposal, proposal_id)
        if proposal is None:
            return {}
        return {"customer_ref": proposal.customer_ref or "",
                "phone_numbers": proposal.phone_number or "",
                "categories": list(proposal.categories or []),
                "reason": proposal.reason or ""}


def _close_proposal(proposal_id: int, status: str, me: Staff, note: str,
                    customer_ref: str | None) -> None:
    with transaction(_services().sessions) as session:
        proposal = session.get(Proposal, proposal_id)
        if proposal is None or proposal.status != "open":
            return
        proposal.status, proposal.decided_by_id = status, me.id
        proposal.decided_at, proposal.decision_note = _now(), note
        if customer_ref:
            proposal.entry_id = session.scalar(
                select(RegisterEntry.id).where(RegisterEntry.customer_ref == customer_ref))


@workspace.get("/queue")
def queue() -> Response:
    """Agents' proposals and reported incidents waiting for a manager's decision."""
    with _services().sessions() as session:
        names = dict(session.execute(select(Staff.id, Staff.name)).all())
        proposals = session.scalars(
            select(Proposal).order_by((Proposal.status == "open").desc(),
                                      Proposal.proposed_at.desc()).limit(100)
        ).all()
        incidents = session.scalars(
            select(Incident).order_by((Incident.status == "open").desc(),
                                      Incident.reported_at.desc()).limit(100)
        ).all()
        refs = dict(session.execute(select(RegisterEntry.id, RegisterEntry.customer_ref)
                                    .where(RegisterEntry.id.in_(
                                        [p.entry_id for p in proposals if p.entry_id]))).all())
        numbers = dict(session.execute(select(Call.call_sid, Call.from_number).where(
            Call.call_sid.in_([i.call_sid for i in incidents]))).all())
    return _render("workspace/queue.html", proposals=proposals, incidents=incidents,
                   names=names, refs=refs, numbers=numbers, errors={})


@workspace.post("/proposals/<int:proposal_id>/decline")
@roles_required(*DECIDERS)
def proposal_decline(proposal_id: int) -> Response:
    """Decline an agent's proposal, saying why."""
    note = request.form.get("note", "").strip()
    if not note:
        flash("Say why the proposal is declined.", "error")
        return redirect(url_for(".queue"), code=303)
    _close_proposal(proposal_id, "declined", _me(), note, None)
    flash("Proposal declined.", "info")
    return redirect(url_for(".queue"), code=303)


@workspace.post("/incidents/<int:incident_id>/resolve")
@roles_required(*DECIDERS)
def incident_resolve(incident_id: int) -> Response:
    """Close an incident with what was done (policy 4.3)."""
    resolution = request.form.get("resolution", "").strip()
    if not resolution:
        flash("Say what was done about the incident.", "error")
        return redirect(url_for(".queue"), code=303)
    with transaction(_services().sessions) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            abort(404)
        if incident.status == "open":
            incident.status, incident.resolution = "resolved", resolution
            incident.resolved_by_id, incident.resolved_at = _me().id, _now()
    flash("Incident resolved.", "info")
    return redirect(url_for(".queue"), code=303)
