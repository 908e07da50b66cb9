"""CSV import and export of the register, in the housing system's (QL's) columns."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TextIO

from callflow.csv_cells import escape_cell, unescape_cell
from callflow.register import (
    COLUMNS,
    REQUIRED_COLUMNS,
    EntryFields,
    FieldError,
    entry_row,
    read_entry,
)
from store.db import transaction
from store.register import RegisterStore, fields_of
from usecases.register import RegisterService


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


def check_rows(
    rows: list[tuple[int, dict[str, str]]], store: RegisterStore, today: date
) -> tuple[list[tuple[int, EntryFields]], list[RowError]]:
    """Parse and validate every row, against the register and against the rest of the file."""
    errors: list[RowError] = []
    parsed: list[tuple[int, EntryFields]] = []
    staff = store.staff_by_email()
    holders = store.number_holders(today)
    seen_refs: dict[str, int] = {}
    file_numbers: dict[str, str] = {}
    for line, row in rows:
        fields, problems = read_entry(row)
        ref = fields.customer_ref
        if ref and ref in seen_refs:
            problems.append(FieldError("customer_ref", f"{ref} is also on line {seen_refs[ref]}"))
        if ref:
            seen_refs.setdefault(ref, line)
        # Numbers move between entries within one file: judge against the file, not the
        # entries it replaces.
        others = {n: r for n, r in holders.items() if r not in seen_refs or r == ref}
        others.update({n: r for n, r in file_numbers.items() if r != ref})
        problems += store.validate(fields, today, staff, others, {p.field for p in problems})
        if fields.lifted_at is None and fields.ends_on is not None and fields.ends_on >= today:
            for number in fields.phone_numbers:
                file_numbers.setdefault(number, ref)
        if not problems:
            parsed.append((line, fields))
        errors += [RowError(line, p.field, p.message) for p in problems]
    return parsed, errors


def import_register(
    stream: TextIO,
    register: RegisterService,
    actor: str,
    now: datetime,
    today: date,
    progress: Callable[[Iterable], Iterable] = lambda items: items,
) -> ImportReport:
    """Import a CSV all or nothing; raise ImportRefused listing every bad row."""
    rows = read_rows(stream)
    with transaction(register.sessions) as session:
        store = RegisterStore(session)
        parsed, errors = check_rows(rows, store, today)
        if errors:
            raise ImportRefused(errors)
        report = ImportReport()
        staff = store.staff_by_email()
        for _line, fields in progress(parsed):
            result = store.save(fields, actor, now, today, staff=staff, holders={})
            setattr(report, result.action, getattr(report, result.action) + 1)
        if report.created or report.updated:
            # Until the cache is rebuilt after the commit, the call path reads the database.
            pending = register.before_commit()
    if report.created or report.updated:
        _fault_test_pause()
        register.after_commit(pending, today)
    return report


def _fault_test_pause() -> None:
    # tests/faults stand the import still between its commit and the cache update, to kill it.
    seconds = os.environ.get("CALLFLOW_FAULT_PAUSE_AFTER_COMMIT")
    if seconds and os.environ.get("CALLFLOW_ENV") == "test":
        time.sleep(float(seconds))


def export_register(out: TextIO, register: RegisterService) -> int:
    """Write every entry as CSV in the import's columns; returns the rows written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    with register.sessions() as session:
        for entry in RegisterStore(session).entries():
            row = entry_row(fields_of(entry))
            writer.writerow({name: escape_cell(value) for name, value in row.items()})
            count += 1
    return count
