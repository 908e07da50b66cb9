"""The dashboard (the last fortnight in charts, and what managers must look at) and the page of
numbers calling more often than policy 4.6 allows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from flask import Response, abort, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callflow.phone import display
from callflow.register import parse_date
from console.workspace import shared, workspace
from console.workspace.charts import Chart, bar_list_chart, day_chart
from store import call_queries as q
from store.models import Incident, Proposal
from usecases.upkeep import reviews_due, without_notice

DASHBOARD_DAYS = 14
DECISION_SERIES = [(o, q.DECISION_LABELS[o]) for o in (
    "centre", "within_window", "designated_contact", "outside_window", "written_only", "closed",
    "withheld", "register_check_failed")] + [("unknown", "Not recorded")]
MARK_SERIES = [("warned", "Warnings"), ("ended_by_agent", "Ended by agent"),
               ("incident", "Incidents")]
REGISTER_SERIES = [("other", "Not on the register"), ("register", "On the register")]


def fortnight_charts(days: Sequence[date], per_day: Mapping[date, Mapping[str, int]],
                     marks: Mapping[date, Mapping[str, int]],
                     per_agent: Sequence[tuple[int, str, int, int]],
                     leaders: Sequence[tuple[str, int]], holders: Mapping[str, str]) -> list[Chart]:
    """The dashboard's four charts from its counts: decisions and marks per day, marks per
    agent, and the numbers calling most (with their customer reference if on the register)."""
    return [
        day_chart("Calls per day by decision", days, per_day, DECISION_SERIES),
        day_chart("Warnings, calls ended by agents and incidents per day", days, marks,
                  MARK_SERIES, stacked=False),
        bar_list_chart("Warnings and calls ended, per agent (last 14 days)",
                       [(name, {"warned": w, "ended_by_agent": e})
                        for _, name, w, e in per_agent], MARK_SERIES[:2]),
        bar_list_chart("Repeated-contact leaders (last 7 days)",
                       [(f"{display(n)} ({holders[n]})" if n in holders else display(n),
                         {"register" if n in holders else "other": c}) for n, c in leaders],
                       REGISTER_SERIES),
    ]


@workspace.get("/dashboard")
def dashboard() -> Response:
    """Charts of the last fortnight, repeated-contact leaders, and what managers must look at."""
    s = shared.services()
    tz = s.settings.tz
    today = shared.today()
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
    charts = fortnight_charts(days, per_day, marks, per_agent, leaders, holders)
    return shared.render("workspace/dashboard.html", charts=charts, due=due, unsent=unsent,
                         open_proposals=open_proposals, open_incidents=open_incidents,
                         today=today)


def last_day_asked(raw: str | None, today: date) -> date:
    """The repeat callers' last day from the query string (today if not given); ValueError
    with a message for a person if it is not a date within the years the log accepts."""
    last = parse_date(raw) if raw else today
    if not shared.EARLIEST_DAY <= last <= shared.LATEST_DAY:
        raise ValueError(f"The date must be between {shared.EARLIEST_DAY.year} and "
                         f"{shared.LATEST_DAY.year}.")
    return last


def abusive_ends(session: Session, numbers: list[str]) -> dict[str, q.AbusiveEnd]:
    """Each number's last call ended for abuse or threats, while colleagues are still warned of
    it (CALLFLOW_ABUSE_MEMORY_DAYS; policy 5.2: highlighted to relevant staff)."""
    days = shared.services().settings.abuse_memory_days
    if days <= 0:
        return {}
    return q.last_abusive_ends(session, numbers, shared.now() - timedelta(days=days))


@workspace.get("/repeat-callers")
def repeat_callers() -> Response:
    """Numbers calling more than the configured times a day or week (policy 4.6)."""
    s = shared.services()
    try:
        last = last_day_asked(request.args.get("to"), shared.today())
    except ValueError as error:
        abort(400, str(error))
    with s.sessions() as session:
        found = q.repeat_callers(session, last, s.settings.tz, s.settings.repeat_calls_per_day,
                                 s.settings.repeat_calls_per_week)
        abused = abusive_ends(session, [r.number for r in found])
    return shared.render("workspace/repeat_callers.html", found=found, abused=abused, last=last,
                         first=last - timedelta(days=6), per_day=s.settings.repeat_calls_per_day,
                         per_week=s.settings.repeat_calls_per_week)
