"""A large register import is set-based: a bounded number of statements, every guarantee kept."""

import csv
import io
from collections import Counter
from dataclasses import replace

import pytest
import redis
from sqlalchemy import event, func, select

from callflow.register import COLUMNS, read_entry
from store.db import transaction
from store.models import AuditRecord, EntryPhone, RegisterEntry, RepresentativePhone
from store.register import RegisterStore, fields_of
from store.routing_cache import CACHE_KEY, READY_FIELD
from tests.conftest import NOW, TODAY
from usecases import register_write
from usecases.register_csv import FileRows, ImportRefused, import_register, read_rows

ROWS = 3000
# Ofcom's drama ranges: 1,000 numbers each.
RANGES = ("+447700900", "+441632960", "+44207946")


def number(i: int) -> str:
    """The i-th of 3,000 distinct numbers no one can own."""
    prefix = RANGES[i // 1000]
    return f"{prefix}{i % 1000:03d}" if len(prefix) == 10 else f"{prefix}0{i % 1000:03d}"


def row(i: int, **changes) -> dict[str, str]:
    values = {
        "customer_ref": f"QL-{i:05d}", "name": f"Person {i}", "phone_numbers": number(i),
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-05-31", "review_on": "2027-03-01",
        "evidence": "written: call notes of 3 November",
        "no_warning_reason": "threats of violence to staff (policy 4.3)",
    }
    values.update(changes)
    return values


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def do_import(services, rows):
    return import_register(io.StringIO(csv_text(rows)), services.register, "import:test", NOW,
                           TODAY)


class Statements:
    """Counts the SQL statements sent on an engine (an executemany counts once)."""

    def __init__(self, engine):
        self.engine, self.count, self.kinds = engine, 0, Counter()

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _params, _context, _executemany):
        self.count += 1
        self.kinds[statement.split(None, 1)[0].upper()] += 1


def test_an_import_of_3000_new_entries_sends_a_bounded_number_of_statements(services, staff):
    with Statements(services.engine) as sent:
        report = do_import(services, [row(i) for i in range(ROWS)])

    assert (report.created, report.updated, report.unchanged) == (ROWS, 0, 0)
    # Three chunks of 1,000: per chunk one read of the stored entries and one INSERT each of
    # entries, numbers and audit records (PostgreSQL: and one draw of ids). Once: staff, numbers
    # in force, last reviews, the register's version, and the cache rebuild's reads. Row by
    # row it was seven statements an entry (21,000 here); now it grows with the chunks alone.
    chunks = ROWS // register_write.CHUNK
    if services.engine.dialect.name == "postgresql":  # and a fresh plan for every lookup
        # The rows go by COPY on the driver's connection, which SQLAlchemy's events do not see;
        # the counts read back below show they arrived.
        # A chunk's stored entries are read with one array of its references (= ANY), and its
        # ids drawn: two statements a chunk, and the seven once; the rebuild streams its rows
        # planned for all of them (the second SET).
        assert dict(sent.kinds) == {"SELECT": 2 * chunks + 7, "SET": 2}
    else:
        assert dict(sent.kinds) == {"SELECT": chunks + 10, "INSERT": 3 * chunks}

    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RegisterEntry)) == ROWS
        phones = dict(session.execute(
            select(RegisterEntry.customer_ref, EntryPhone.number).join(EntryPhone)).all())
        audits = session.execute(
            select(AuditRecord.customer_ref, AuditRecord.action, AuditRecord.actor,
                   AuditRecord.changes).order_by(AuditRecord.id)).all()
    assert phones == {f"QL-{i:05d}": number(i) for i in range(ROWS)}
    assert len(audits) == ROWS
    assert {(a.action, a.actor) for a in audits} == {("created", "import:test")}
    last = next(a for a in audits if a.customer_ref == "QL-02999")
    assert last.changes["phone_numbers"] == ["", "+442079460999"]
    assert last.changes["name"] == ["", "Person 2999"]
    assert all(before == "" for before, _after in last.changes.values())

    cache = redis.Redis.from_url(services.redis_url)
    assert cache.hlen(CACHE_KEY) == ROWS + 2  # every number, the ready and built marks
    assert cache.hexists(CACHE_KEY, READY_FIELD)
    assert services.register.cache.fetch("+441632960500")[1].written_only is True


def test_a_bulk_created_entry_is_stored_as_the_form_would_store_it(services, staff):
    rich = row(1, phone_numbers="+447700900001; +447700900002", written_only="no",
               call_windows="Tue 10:00-12:00", designated_contact="supervisor@example.org",
               fallback="voicemail", call_frequency="2 a week",
               max_call_minutes="10",
               representatives="Jo Bloggs | advocate | +447700900456 | covered")
    do_import(services, [rich, row(3)])
    with transaction(services.sessions) as session:  # the ORM's row-by-row write, for comparison
        store = RegisterStore(session)
        fields, problems = read_entry(row(5))
        assert problems == []
        store.write(None, fields, "import:test", NOW, store.staff_by_email())

    with services.sessions() as session:
        entry = session.scalar(
            select(RegisterEntry).where(RegisterEntry.customer_ref == "QL-00001"))
        assert [(p.number, p.position) for p in entry.phones] == [
            ("+447700900001", 0), ("+447700900002", 1)]
        assert [(p.number, p.covered) for p in session.scalars(select(RepresentativePhone))] == [
            ("+447700900456", True)]
        assert (entry.designated_contact.email, entry.fallback_voicemail, entry.max_calls,
                entry.max_calls_per, entry.max_call_minutes) == (
            "supervisor@example.org", True, 2, "week", 10)
        bulk, orm = (fields_of(session.scalar(
            select(RegisterEntry).where(RegisterEntry.customer_ref == ref)))
            for ref in ("QL-00003", "QL-00005"))
        assert bulk == replace(orm, customer_ref="QL-00003", name="Person 3",
                               phone_numbers=("+447700900003",))
        assert fields_of(entry) == read_entry(rich)[0]
    assert services.register.cache.fetch("+447700900456")[1].representative is True


def test_problems_across_chunks_are_all_reported_with_their_lines(services, staff, monkeypatch):
    monkeypatch.setattr(register_write, "CHUNK", 500)
    rows = [row(i) for i in range(1200)]
    rows[700] = row(700, customer_ref="QL-00002")  # line 702 repeats line 4's reference
    rows[1100] = row(1100, phone_numbers=number(3))  # line 1102 takes line 5's number
    rows[1150] = row(1150, ends_on="soon")
    with pytest.raises(ImportRefused) as refused:
        do_import(services, rows)

    assert [(e.line, e.column, e.message) for e in refused.value.errors] == [
        (702, "customer_ref", "QL-00002 is also on line 4"),
        (1102, "phone_numbers", "+447700900003 already belongs to active entry QL-00003"),
        (1152, "ends_on", "'soon' is not a date (use 2026-12-01 or 01/12/2026)"),
    ]
    with services.sessions() as session:  # all or nothing
        assert session.scalar(select(func.count()).select_from(RegisterEntry)) == 0
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 0


def test_updates_and_creations_in_one_import_keep_their_order_and_audit(services, staff,
                                                                       monkeypatch):
    monkeypatch.setattr(register_write, "CHUNK", 2)
    do_import(services, [row(0), row(1)])
    report = do_import(services, [row(2), row(0, name="Renamed"), row(3), row(1)])

    assert (report.created, report.updated, report.unchanged) == (2, 1, 1)
    with services.sessions() as session:
        audits = session.execute(select(AuditRecord.customer_ref, AuditRecord.action,
                                        AuditRecord.changes).order_by(AuditRecord.id)).all()
    assert [(a.customer_ref, a.action) for a in audits] == [
        ("QL-00000", "created"), ("QL-00001", "created"),
        ("QL-00002", "created"), ("QL-00000", "updated"), ("QL-00003", "created")]
    assert audits[3].changes == {"name": ["Person 0", "Renamed"]}


class Unseekable(io.StringIO):
    """Standard input: read once, front to back."""

    def seekable(self) -> bool:
        return False


def test_a_file_on_disk_is_read_again_rather_than_held(services, staff):
    text = csv_text([row(0), row(1)]).replace("\nQL-00001", "\n\nQL-00001")  # a blank line
    rows = FileRows(io.StringIO(text))

    assert (len(rows), list(rows.lines)) == (2, [2, 4])
    assert list(rows) == [values for _line, values in read_rows(io.StringIO(text))]
    assert list(rows) == list(rows)  # every pass reads the file again, from its start


def test_standard_input_is_imported_as_a_file_is(services, staff):
    rows = [row(0), row(1, ends_on="soon")]
    with pytest.raises(ImportRefused) as refused:
        import_register(Unseekable(csv_text(rows)), services.register, "import:test", NOW, TODAY)
    assert [(e.line, e.column) for e in refused.value.errors] == [(3, "ends_on")]

    report = import_register(Unseekable(csv_text([row(0), row(1)])), services.register,
                             "import:test", NOW, TODAY)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
