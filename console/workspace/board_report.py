"""The board's oversight report (issue 13 item 8): a page, its CSV and its PDF, for any period.

Managers and supervisors only: the figures carry no personal data, but they are the register's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from flask import Response, request

from callflow.board_report import (
    BoardReport,
    PeriodError,
    ReportPeriod,
    check_period,
    previous_month,
)
from callflow.register import parse_date
from callflow.roles import Capability, may
from console.auth import current_staff, requires
from console.workspace import shared, workspace
from console.workspace.charts import Chart, bar_list_chart
from usecases.board_report import board_report, period_words, report_csv, report_pdf

# One series: the bars are counts, each labelled and given in figures beside the chart.
COUNT_SERIES = [("centre", "Number")]


def read_period(args: Mapping[str, str], today: date) -> ReportPeriod:
    """The period asked for in the query (from, to), the last whole month if neither is given;
    PeriodError names every problem at once."""
    raw = {"from": args.get("from", "").strip(), "to": args.get("to", "").strip()}
    if not raw["from"] and not raw["to"]:
        return previous_month(today)
    errors: list[tuple[str, str]] = []
    days: dict[str, date] = {}
    for name, which in (("from", "first"), ("to", "last")):
        if not raw[name]:
            errors.append((name, f"Give the {which} day of the period"))
            continue
        try:
            day = parse_date(raw[name])
        except ValueError:
            errors.append((name, f"The {which} day is not a date: write it as 2026-11-30 or "
                                 "30/11/2026"))
            continue
        if not shared.EARLIEST_DAY <= day <= shared.LATEST_DAY:
            errors.append((name, f"The {which} day must be between "
                                 f"{shared.EARLIEST_DAY.year} and {shared.LATEST_DAY.year}"))
            continue
        days[name] = day
    if errors:
        raise PeriodError(errors)
    return check_period(days["from"], days["to"])


def charts_of(report) -> dict[str, Chart]:
    """A horizontal bar chart for each table the report charts, by the table's key."""
    return {table.key: bar_list_chart(table.title, [(f.label, {"centre": f.count})
                                                    for f in table.figures], COUNT_SERIES,
                                      width=520)
            for section in report.sections for table in section.tables if table.chart}


def _query(period: ReportPeriod) -> dict[str, str]:
    return {"from": period.first.isoformat(), "to": period.last.isoformat()}


@workspace.get("/board-report")
@requires(Capability.READ_BOARD_REPORT)
def board_report_page() -> Response:
    """The report for the period asked for, with its charts and the links to CSV and PDF."""
    today = shared.today()
    values = {"from": request.args.get("from", ""), "to": request.args.get("to", "")}
    try:
        period = read_period(request.args, today)
    except PeriodError as refused:
        errors: dict[str, list[str]] = {}
        for name, message in refused.errors:
            errors.setdefault(name, []).append(message)
        return shared.render("workspace/board_report.html", status=422, report=None,
                             values=values, errors=errors, charts={}, query={}, period_text="")
    report = board_report(shared.services(), period, today)
    values = _query(period)
    return shared.render("workspace/board_report.html", report=report, values=values,
                         errors={}, charts=charts_of(report), query=_query(period),
                         period_text=period_words(period))


def _download_period() -> ReportPeriod | Response:
    try:
        return read_period(request.args, shared.today())
    except PeriodError as refused:
        text = "\n".join(message for _, message in refused.errors) + "\n"
        return Response(text, status=400, mimetype="text/plain")


@workspace.get("/board-report.csv")
@requires(Capability.READ_BOARD_REPORT)
def board_report_csv() -> Response:
    """The report's figures as CSV, one row each."""
    return _download(report_csv, "csv", "text/csv")


@workspace.get("/board-report.pdf")
@requires(Capability.READ_BOARD_REPORT)
def board_report_pdf() -> Response:
    """The report as a PDF for the board's papers."""
    return _download(report_pdf, "pdf", "application/pdf")


def _download(render: Callable[[BoardReport], str | bytes], extension: str,
              mimetype: str) -> Response:
    """The report for the period asked for, rendered as a file to save."""
    period = _download_period()
    if isinstance(period, Response):
        return period
    report = board_report(shared.services(), period, shared.today())
    name = f"oversight-report-{period.first.isoformat()}-to-{period.last.isoformat()}.{extension}"
    return Response(render(report), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@workspace.context_processor
def _board_report_link() -> dict[str, Any]:
    """Whether the signed-in member of staff sees the oversight report in the navigation."""
    staff = current_staff()
    return {"may_read_board_report": staff is not None and may(staff.role,
                                                               Capability.READ_BOARD_REPORT)}
