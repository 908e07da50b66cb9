"""CSV import and export of the register, in the housing system's (QL's) columns."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TextIO

from callflow.csv_cells import escape_cell, unescape_cell
from callflow.register import COLUMNS, REQUIRED_COLUMNS, entry_row
from usecases.register import RegisterService
from usecases.register_write import Progress, each


@dataclass(frozen=True)
class RowError:
    """One problem in the file: its line, its column and what is wrong."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.message}"


@dataclass
class ImportReport:
    """What an import found and did."""

    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        """True when the file was clean and was applied."""
        return not self.errors


class ImportRefused(ValueError):
    """A file that cannot be imported; nothing was written."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s); nothing was imported")


def read_rows(stream: TextIO) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the dialect (comma, semicolon, tab) is sniffed."""
    text = stream.read()
    if text.startswith("\ufeff"):
        text = text[1:]  # Excel writes a byte order mark
    if not text.strip():
        raise ImportRefused([RowError(1, "header", "the file is empty")])
    try:
        delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is sniffed: a header has no quotes to guess quoting from, and Excel
    # always doubles a quote inside a quoted cell.
    reader = csv.DictReader(io.StringIO(text), dialect=csv.excel, delimiter=delimiter)
    headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing:
        raise ImportRefused([RowError(1, "header", f"missing column(s): {', '.join(missing)}")])
    reader.fieldnames = headers
    rows = []
    for row in reader:
        if not any((v or "").strip() for k, v in row.items() if k):
            continue
        rows.append(
            (reader.line_num, {k: unescape_cell(v or "") for k, v in row.items() if k in COLUMNS})
        )
    return rows


def import_register(
    stream: TextIO,
    register: RegisterService,
    actor: str,
    now: datetime,
    today: date,
    progress: Progress = each,
) -> ImportReport:
    """Import a CSV all or nothing; raise ImportRefused listing every bad row."""
    rows = read_rows(stream)
    result = register.write(
        [row for _line, row in rows], actor, now, today,
        bulk=True, lines=[line for line, _row in rows], progress=progress,
    )
    if not result.ok:
        raise ImportRefused([
            RowError(line, problem.field, problem.message)
            for (line, _row), problems in zip(rows, result.problems, strict=True)
            for problem in problems
        ])
    return ImportReport(created=result.count("created"), updated=result.count("updated"),
                        unchanged=result.count("unchanged"))


def export_register(out: TextIO, register: RegisterService) -> int:
    """Write every entry as CSV in the import's columns; returns the rows written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for fields in register.every_entry():
        writer.writerow({name: escape_cell(value) for name, value in entry_row(fields).items()})
        count += 1
    return count
