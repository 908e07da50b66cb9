"""The board's oversight report for a period: gathered, counted, and written as CSV or PDF."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from fpdf import FPDF

from callflow.board_report import BoardReport, ReportPeriod, Table, build_report
from callflow.csv_cells import escape_cell
from callflow.words import long_date
from store import board_report_queries as facts
from usecases.bootstrap import Services

CSV_COLUMNS = ("section", "table", "measure", "count")
_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def board_report(services: Services, period: ReportPeriod, today: date) -> BoardReport:
    """The report for `period`, read from the register, reviews, appeals and the call log."""
    tz = services.settings.tz
    with services.sessions() as session:
        return build_report(
            period, today, facts.entries(session, tz), facts.changes(session, period, tz),
            facts.reviews(session, period), facts.appeals(session, period, tz),
            facts.calls(session, period, tz))


def period_words(period: ReportPeriod) -> str:
    """``1 November 2026 to 30 November 2026``."""
    return f"{long_date(period.first)} to {long_date(period.last)}"


def report_csv(report: BoardReport) -> str:
    """The report as CSV: one row per figure, with its section and table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows():
        writer.writerow([escape_cell(cell) for cell in row])
    return out.getvalue()


def report_pdf(report: BoardReport) -> bytes:
    """The report as an A4 PDF: each table's figures written out, and bars beside those that
    are charted (the numbers are printed beside the bars, so nothing is said by colour alone)."""
    pdf = FPDF(format="A4")
    title = f"Person of interest register: oversight report, {period_words(report.period)}"
    pdf.set_title(title)
    pdf.set_author("callflow")
    pdf.set_lang("en-GB")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    family = "Helvetica"
    if _FONT.exists() and _BOLD.exists():
        pdf.add_font("Report", "", str(_FONT))
        pdf.add_font("Report", "B", str(_BOLD))
        family = "Report"
    pdf.add_page()
    pdf.set_font(family, "B", 14)
    pdf.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for section in report.sections:
        pdf.set_font(family, "B", 12)
        pdf.ln(3)
        pdf.multi_cell(0, 6, section.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 10)
        pdf.multi_cell(0, 5, _fold(section.intro, family), new_x="LMARGIN", new_y="NEXT")
        for table in section.tables:
            _table(pdf, table, family)
    return bytes(pdf.output())


def _fold(text: str, family: str) -> str:
    if family != "Helvetica":
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _table(pdf: FPDF, table: Table, family: str) -> None:
    pdf.ln(2)
    pdf.set_font(family, "B", 10)
    pdf.multi_cell(0, 5.5, table.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    label_width, count_width = 100, 14
    bar_space = pdf.epw - label_width - count_width - 4
    largest = max((f.count for f in table.figures), default=0)
    for figure in table.figures:
        label = _fold(figure.label, family)
        height = 5.5 * len(pdf.multi_cell(label_width, 5.5, label, dry_run=True,
                                          output="LINES"))
        if pdf.get_y() + height > pdf.page_break_trigger:
            pdf.add_page()
        y = pdf.get_y()
        pdf.multi_cell(label_width, 5.5, label, new_x="RIGHT", new_y="TOP")
        pdf.cell(count_width, 5.5, str(figure.count), align="R")
        if table.chart and largest and figure.count:
            pdf.set_fill_color(31, 94, 140)
            pdf.rect(pdf.l_margin + label_width + count_width + 4, y + 1,
                     bar_space * figure.count / largest, 3.5, style="F")
        pdf.set_xy(pdf.l_margin, y + height + 0.5)
