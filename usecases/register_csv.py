"""CSV import and export of the register, in the housing system's (QL's) columns."""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain
from typing import TextIO, overload

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


def _reader(stream: TextIO) -> tuple[Iterator[list[str]], list[str]]:
    """The file's rows as lists of cells, and its lower-case column names; the dialect (comma,
    semicolon, tab) is sniffed from the header. Raises ImportRefused for an empty file or a
    missing column."""
    first = stream.readline()
    if first.startswith("\ufeff"):
        first = first[1:]  # Excel writes a byte order mark
    lines: Iterable[str] = chain([first], stream)
    if not first.strip():
        rest = stream.read()
        if not rest.strip():
            raise ImportRefused([RowError(1, "header", "the file is empty")])
        lines = chain([first], io.StringIO(rest))
    try:
        delimiter = csv.Sniffer().sniff(first.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    # Only the delimiter is sniffed: a header has no quotes to guess quoting from, and Excel
    # always doubles a quote inside a quoted cell.
    reader = csv.reader(lines, dialect=csv.excel, delimiter=delimiter)
    headers = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing:
        raise ImportRefused([RowError(1, "header", f"missing column(s): {', '.join(missing)}")])
    return reader, headers


def _named_columns(headers: list[str]) -> dict[str, int]:
    """Each column name (not blank) and the place of its last cell, in the order first named."""
    return {name: i for i, name in enumerate(headers) if name}


def _filled(reader: Iterator[list[str]], headers: list[str],
            ) -> Iterator[tuple[int, list[str | None]]]:
    """(line number, cell of each named column) for every row with something in a named
    column; a column named twice takes its last cell, and a short row's missing cells are None."""
    columns = list(_named_columns(headers).items())
    for row in reader:
        width = len(row)
        cells = [row[i] if i < width else None for _name, i in columns]
        if any(cell and cell.strip() for cell in cells):
            yield reader.line_num, cells  # type: ignore[attr-defined]


def iter_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs as the file is read (see _reader); rows with nothing in them
    are left out."""
    reader, headers = _reader(stream)
    # The columns the register reads, by their place among the cells _filled gives.
    wanted = [(position, name) for position, name in enumerate(_named_columns(headers))
              if name in COLUMNS]
    for line, cells in _filled(reader, headers):
        yield line, {name: unescape_cell(cells[position] or "") for position, name in wanted}


def iter_lines(stream: TextIO) -> Iterator[int]:
    """The line number of each row iter_rows gives, without reading the rows' cells."""
    reader, headers = _reader(stream)
    return (line for line, _cells in _filled(reader, headers))


def read_rows(stream: TextIO) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of the whole file (see iter_rows)."""
    return list(iter_rows(stream))


class FileRows(Sequence[dict[str, str]]):
    """The rows of a seekable CSV file, read again for each pass rather than held in memory:
    a first pass finds their line numbers (and any problem with the header)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.start = stream.tell()
        self.lines = array("q", iter_lines(stream))

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[dict[str, str]]:
        self.stream.seek(self.start)
        return (row for _line, row in iter_rows(self.stream))

    @overload
    def __getitem__(self, index: int) -> dict[str, str]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, str]]: ...
    def __getitem__(self, index):
        rows = list(self)  # not used by the import, which reads the rows in order
        return rows[index]


def import_register(
    stream: TextIO,
    register: RegisterService,
    actor: str,
    now: datetime,
    today: date,
    progress: Progress = each,
) -> ImportReport:
    """Import a CSV all or nothing; raise ImportRefused listing every bad row.

    A file that can be read twice (a file on disk) is streamed: its rows are checked and saved
    a chunk at a time and never held whole."""
    rows: Sequence[dict[str, str]]
    lines: Sequence[int]
    if stream.seekable():
        file_rows = FileRows(stream)
        rows, lines = file_rows, file_rows.lines
    else:
        pairs = read_rows(stream)
        rows, lines = [row for _line, row in pairs], [line for line, _row in pairs]
    result = register.write(rows, actor, now, today, bulk=True, lines=lines, progress=progress)
    if not result.ok:
        raise ImportRefused([
            RowError(line, problem.field, problem.message)
            for line, problems in zip(lines, result.problems, strict=True)
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
