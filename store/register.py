"""The register in the database: save with the policy's rules, audit every change, lift, look up."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import JSON, Dialect, any_, bindparam, func, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.types import TypeEngine

from callflow import words
from callflow.adjustments import Adjustment, Need
from callflow.evidence import Evidence, EvidenceKind
from callflow.register import (
    COLUMNS,
    LIFT_COLUMNS,
    VOICEMAIL,
    Category,
    ClosedIssue,
    EntryFields,
    EntryInvalid,
    FieldError,
    Restriction,
    check_entry,
    entry_row,
)
from callflow.representatives import Representative
from callflow.review_dates import DEFAULT_MAX_REVIEW_MONTHS
from callflow.roles import Capability, may
from store.call_limits import limits_of
from store.models import (
    AuditRecord,
    Base,
    EntryPhone,
    RegisterEntry,
    RepresentativePhone,
    Review,
    Staff,
)

SYSTEM_ACTOR = "system"
# Well under every database's limit on bound parameters (SQLite's is 999 before 3.32).
_REFS_PER_QUERY = 500
# Rows the routing cache's rebuild holds at once.
_ROUTABLE_PER_FETCH = 10_000


@dataclass(frozen=True)
class SaveResult:
    """What a save did: created, updated or unchanged, and the changes it audited."""

    action: str
    entry_id: int
    changes: dict[str, list[str]]
    customer_ref: str


def _entry_options():
    return (
        selectinload(RegisterEntry.phones),
        selectinload(RegisterEntry.representative_phones),
        selectinload(RegisterEntry.lifted_by),
        selectinload(RegisterEntry.designated_contact),
        selectinload(RegisterEntry.fallback_contact),
        selectinload(RegisterEntry.decided_by),
    )


def fields_of(entry: RegisterEntry) -> EntryFields:
    """The typed fields of a stored entry."""
    if entry.fallback_contact is not None:
        fallback = entry.fallback_contact.email
    else:
        fallback = VOICEMAIL if entry.fallback_voicemail else ""
    return EntryFields(
        customer_ref=entry.customer_ref,
        name=entry.name or "",
        phone_numbers=tuple(p.number for p in entry.phones),
        categories=tuple(Category(c) for c in entry.categories),
        reason=entry.reason,
        decided_by=entry.decided_by.email,
        decided_on=entry.decided_on,
        starts_on=entry.starts_on,
        ends_on=entry.ends_on,
        written_only=entry.written_only,
        call_windows=entry.call_windows,
        designated_contact=entry.designated_contact.email if entry.designated_contact else "",
        fallback=fallback,
        visits_by_appointment=entry.visits_by_appointment,
        call_limits=limits_of(entry),
        adjustments=tuple(Adjustment(Need(a["need"]), a.get("detail", ""))
                          for a in entry.adjustments or ()),
        written_only_exception=entry.written_only_exception or "",
        representatives=tuple(Representative(str(r["name"]), str(r["relationship"]),
                                             tuple(r["phone_numbers"]), bool(r["covered"]))
                              for r in entry.representatives or ()),
        closed_issues=tuple(ClosedIssue(i["reference"], i["summary"]) for i in entry.closed_issues),
        staff_notes=entry.staff_notes,
        postal_address=entry.postal_address or "",
        evidence=tuple(Evidence(EvidenceKind(e["kind"]), e["reference"])
                       for e in entry.evidence or ()),
        no_warning_reason=entry.no_warning_reason or "",
        not_told_reason=entry.not_told_reason or "",
        review_on=entry.review_on,
        notice_sent_on=entry.notice_sent_on,
        lifted_at=entry.lifted_at,
        lifted_by=entry.lifted_by.email if entry.lifted_by else "",
        lifted_reason=entry.lifted_reason or "",
    )


def restriction_of(entry: RegisterEntry) -> Restriction:
    """The routing view of an entry."""
    return Restriction(
        entry_id=entry.id,
        starts_on=entry.starts_on,
        ends_on=entry.ends_on,
        written_only=entry.written_only,
        call_windows=entry.call_windows,
        designated_contact_id=entry.designated_contact_id,
        fallback_contact_id=entry.fallback_contact_id,
        call_limits=limits_of(entry),
    )


def arrangements_text(entry: RegisterEntry) -> str:
    """The arrangements of an entry in a few words, for staff."""
    parts = []
    if entry.written_only:
        parts.append("written only")
    if entry.call_windows:
        parts.append(f"calls {entry.call_windows}")
    if entry.designated_contact:
        fallback = entry.fallback_contact.name if entry.fallback_contact else "voicemail"
        parts.append(f"contact {entry.designated_contact.name}, then {fallback}")
    if entry.visits_by_appointment:
        parts.append("visits by appointment")
    if limits_of(entry):
        parts.append(limits_of(entry).describe())
    return "; ".join(parts)


# What a new entry's audit record holds, in name order: every field but the lift's.
_AUDITED_SORTED = sorted(name for name in COLUMNS if name not in LIFT_COLUMNS)


def diff(before: EntryFields | None, after: EntryFields | None) -> dict[str, list[str]]:
    """Field-by-field changes as [before, after] text, for the audit trail (lifting apart)."""
    old = entry_row(before) if before else {}
    new = entry_row(after) if after else {}
    if not old:  # a new entry (an import's many): every field it has, in name order
        return {name: ["", value] for name in _AUDITED_SORTED if (value := new.get(name, ""))}
    return {
        name: [old.get(name, ""), new.get(name, "")]
        for name in sorted(set(old) | set(new))
        if old.get(name, "") != new.get(name, "") and name not in LIFT_COLUMNS
    }


# What restriction_of reads, for queries that need no whole entry.
_ROUTING_COLUMNS = (
    RegisterEntry.id, RegisterEntry.starts_on, RegisterEntry.ends_on, RegisterEntry.written_only,
    RegisterEntry.call_windows, RegisterEntry.designated_contact_id,
    RegisterEntry.fallback_contact_id, RegisterEntry.max_calls, RegisterEntry.max_calls_per,
    RegisterEntry.max_call_minutes,
)


def field_columns(fields: EntryFields) -> dict[str, object]:
    """The register_entries columns that come straight from an entry's checked fields (no
    staff, no times): what a new entry is inserted with and an edit sets alike."""
    limits = fields.call_limits
    return {
        "name": fields.name,
        "categories": [c.value for c in fields.categories],
        "reason": fields.reason,
        "written_only": fields.written_only,
        "call_windows": fields.call_windows,
        "fallback_voicemail": fields.fallback == VOICEMAIL,
        "visits_by_appointment": fields.visits_by_appointment,
        "max_calls": limits.max_calls,
        "max_calls_per": limits.per.value if limits.max_calls is not None else None,
        "max_call_minutes": limits.max_minutes,
        "adjustments": [{"need": a.need.value, "detail": a.detail} for a in fields.adjustments],
        "written_only_exception": fields.written_only_exception,
        "representatives": [
            {"name": r.name, "relationship": r.relationship,
             "phone_numbers": list(r.phone_numbers), "covered": r.covered}
            for r in fields.representatives],
        "closed_issues": [{"reference": i.reference, "summary": i.summary}
                          for i in fields.closed_issues],
        "staff_notes": fields.staff_notes,
        "postal_address": fields.postal_address,
        "evidence": [{"kind": e.kind.value, "reference": e.reference} for e in fields.evidence],
        "no_warning_reason": fields.no_warning_reason,
        "not_told_reason": fields.not_told_reason,
        "decided_on": fields.decided_on,
        "starts_on": fields.starts_on,
        "ends_on": fields.ends_on,
        "review_on": fields.review_on,
        "notice_sent_on": fields.notice_sent_on,
    }


def entry_columns(fields: EntryFields, staff: dict[str, Staff], now: datetime) -> dict[str, object]:
    """The register_entries columns of a new entry from checked fields (as _apply sets them)."""
    designated = staff.get(fields.designated_contact)
    fallback = staff.get(fields.fallback) if fields.fallback != VOICEMAIL else None
    return {
        "customer_ref": fields.customer_ref,
        **field_columns(fields),
        "designated_contact_id": designated.id if designated else None,
        "fallback_contact_id": fallback.id if fallback else None,
        "decided_by_id": staff[fields.decided_by].id,
        "created_at": now,
        "updated_at": now,
    }


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, object]],
                copies: BackgroundCopies | None = None) -> None:
    """Insert rows (each with the same columns) into a model's table in the session's
    transaction: on PostgreSQL by COPY, which sends them as one stream with no statement to
    plan per row, on SQLite by the driver's executemany INSERT. Each value goes through its
    column's own conversion (JSON, UTC datetimes), as in the ORM's INSERT. With copies (on
    PostgreSQL) the COPY runs on their thread and this returns at once (see BackgroundCopies)."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    table = model.__table__
    names = list(rows[0])
    if dialect.name not in ("postgresql", "sqlite") or any(
            column.default is not None and column.name not in names for column in table.c):
        # A default the ORM fills in (not the database): let the ORM's INSERT do it.
        if copies is not None:
            copies.settle()
        session.execute(insert(model), rows)
        return
    converters = [(name, _copy_converter(table.c[name].type, dialect)) for name in names]
    quote = dialect.identifier_preparer.quote
    columns = f"{dialect.identifier_preparer.format_table(table)} " \
              f"({', '.join(quote(name) for name in names)})"
    values = ([row[name] if convert is None else convert(row[name])
               for name, convert in converters] for row in rows)
    if dialect.name == "sqlite":
        # The driver's executemany: the ORM's per-row bookkeeping is most of an INSERT's time.
        connection.exec_driver_sql(
            f"INSERT INTO {columns} VALUES ({', '.join('?' for _name in names)})",
            [tuple(row) for row in values])
        return
    driver = connection.connection.driver_connection

    def copy() -> None:
        with driver.cursor() as cursor, cursor.copy(f"COPY {columns} FROM STDIN") as stream:
            for row in values:
                stream.write_row(row)

    if copies is None:
        copy()
    else:
        copies.submit(copy)


class BackgroundCopies:
    """COPY statements run one after another on a thread of their own, in the caller's
    transaction (PostgreSQL): while the server loads one chunk of an import (its foreign keys,
    indexes), the caller reads and checks the next. psycopg releases the GIL while it waits on
    the server. The caller settles (waits for every COPY, raising the first one's error) before
    its own next use of the connection, and closes them before the transaction ends."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="register-copy")
        self._pending: list[Future[None]] = []

    def submit(self, copy: Callable[[], None]) -> None:
        """Run copy after those already submitted."""
        self._pending.append(self._thread.submit(copy))

    def settle(self) -> None:
        """Wait for every COPY submitted; raise the first one's error."""
        pending, self._pending = self._pending, []
        failed = [error for error in (future.exception() for future in pending) if error]
        if failed:
            raise failed[0]

    def close(self) -> None:
        """Wait for the COPY statements still running (their errors are the caller's to
        settle first) and end the thread."""
        self._thread.shutdown(wait=True)


def _copy_converter(column_type: TypeEngine, dialect: Dialect) -> Callable[[object], object] | None:
    """How a value is converted for insert_rows: as the column's type converts it for an
    INSERT, but a JSON value straight to its text (the same json.dumps), an empty list without
    a call."""
    if isinstance(column_type, JSON):
        dumps = getattr(dialect, "_json_serializer", None) or json.dumps
        return _last_repeated(lambda value: "[]" if value == [] else dumps(value))
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return None if process is None else _last_repeated(process)


def _last_repeated(convert: Callable[[object], object]) -> Callable[[object], object]:
    """convert, answering again without a call when a value equals the one before (a column
    such as created_at, the same in every row of an import, or a run of the same categories)."""
    last: list[object] = [_NOTHING, None]

    def converted(value: object) -> object:
        if value != last[0] or type(value) is not type(last[0]):
            last[0], last[1] = value, convert(value)
        return last[1]

    return converted


_NOTHING = object()


class RegisterStore:
    """Reads and writes register entries inside the caller's transaction."""

    def __init__(self, session: Session, max_review_months: int = DEFAULT_MAX_REVIEW_MONTHS):
        self.session = session
        # The latest a review may fall after an entry starts or was last reviewed (a setting).
        self.max_review_months = max_review_months
        self._last_reviews: dict[str, date] | None = None
        self._custom_plans = False

    def last_reviewed_on(self, customer_ref: str) -> date | None:
        """The day of the entry's latest recorded review, or None (read once per store)."""
        if self._last_reviews is None:
            self._last_reviews = dict(self.session.execute(
                select(RegisterEntry.customer_ref, func.max(Review.reviewed_on))
                .join(Review, Review.entry_id == RegisterEntry.id)
                .group_by(RegisterEntry.customer_ref)
            ).all())
        return self._last_reviews.get(customer_ref)

    def staff_by_email(self) -> dict[str, Staff]:
        """Every staff member, by lower-case email."""
        return {s.email: s for s in self.session.scalars(select(Staff))}

    def get(self, customer_ref: str) -> RegisterEntry | None:
        """The entry for a customer reference, or None."""
        return self.session.scalar(
            select(RegisterEntry)
            .where(RegisterEntry.customer_ref == customer_ref)
            .options(*_entry_options())
        )

    def get_by_id(self, entry_id: int) -> RegisterEntry | None:
        """The entry with this id, or None."""
        return self.session.get(RegisterEntry, entry_id, options=_entry_options())

    def entries(self) -> Iterator[RegisterEntry]:
        """Every entry, in customer reference order."""
        yield from self.session.scalars(
            select(RegisterEntry).order_by(RegisterEntry.customer_ref).options(*_entry_options())
        )

    def number_holders(self, today: date) -> dict[str, str]:
        """Numbers on entries still in force or yet to start, mapped to their customer_ref."""
        rows = self.session.execute(
            select(EntryPhone.number, RegisterEntry.customer_ref)
            .join(RegisterEntry)
            .where(RegisterEntry.lifted_at.is_(None), RegisterEntry.ends_on >= today)
        )
        return {number: ref for number, ref in rows}

    def validate(
        self,
        fields: EntryFields,
        today: date,
        staff: dict[str, Staff] | None = None,
        holders: dict[str, str] | None = None,
        unreadable: Iterable[str] = (),
    ) -> list[FieldError]:
        """Every rule the register holds an entry to, with field-named messages."""
        staff = self.staff_by_email() if staff is None else staff
        roles = {email: s.role for email, s in staff.items() if s.active}
        holders = self.number_holders(today) if holders is None else holders
        return check_entry(fields, roles, holders, unreadable, self.max_review_months,
                           self.last_reviewed_on(fields.customer_ref))

    def get_many(self, customer_refs: Iterable[str]) -> dict[str, RegisterEntry]:
        """The entries for these customer references that exist, by reference."""
        wanted = sorted(set(customer_refs))
        found: dict[str, RegisterEntry] = {}
        if not self._custom_plans and self.session.get_bind().dialect.name == "postgresql":
            # psycopg prepares a query run five times, and PostgreSQL may then keep one generic
            # plan made while this transaction's table was still empty (a sequential scan), for
            # every chunk of a large import. Plan each lookup afresh, in this transaction only.
            self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            self._custom_plans = True
        if self._custom_plans:
            # One array for the whole lot (= ANY): no list of bound parameters to render and
            # adapt one by one, as IN has.
            matches = [RegisterEntry.customer_ref == any_(
                bindparam("refs", wanted, type_=ARRAY(RegisterEntry.customer_ref.type)))]
        else:
            matches = [RegisterEntry.customer_ref.in_(wanted[start:start + _REFS_PER_QUERY])
                       for start in range(0, len(wanted), _REFS_PER_QUERY)]
        for match in matches:
            found.update(
                (entry.customer_ref, entry)
                for entry in self.session.scalars(
                    select(RegisterEntry).where(match).options(*_entry_options()))
            )
        return found

    def save(
        self,
        fields: EntryFields,
        actor: str,
        now: datetime,
        today: date,
        staff: dict[str, Staff] | None = None,
        holders: dict[str, str] | None = None,
    ) -> SaveResult:
        """Check fields against every rule, then write them; refuse them if any rule fails."""
        errors = self.validate(fields, today, staff, holders)
        if errors:
            raise EntryInvalid(errors)
        staff = self.staff_by_email() if staff is None else staff
        return self.write(self.get(fields.customer_ref), fields, actor, now, staff)

    def write(
        self,
        entry: RegisterEntry | None,
        fields: EntryFields,
        actor: str,
        now: datetime,
        staff: dict[str, Staff],
    ) -> SaveResult:
        """Create or update an entry from fields already checked (validate), and audit it.

        entry is the stored entry for fields.customer_ref, or None. Lifting is final: fields
        with lifted_at lift an entry not yet lifted (as an import of an export does), and fields
        without it never make a lifted entry active again.
        """
        before = fields_of(entry) if entry else None
        changes = diff(before, fields)
        lifting = fields.lifted_at is not None and (entry is None or entry.lifted_at is None)
        if entry is not None and not changes and not lifting:
            return SaveResult("unchanged", entry.id, {}, entry.customer_ref)
        if entry is None:
            entry = RegisterEntry(customer_ref=fields.customer_ref, created_at=now)
            self.session.add(entry)
        if changes or before is None:
            self._apply(entry, fields, staff, now)
            self.session.flush()
            self.audit(entry, actor, "created" if before is None else "updated", now, changes)
        if lifting:
            entry.lifted_at = fields.lifted_at
            entry.lifted_by = staff[fields.lifted_by]
            entry.lifted_reason = fields.lifted_reason
            entry.updated_at = now
            self.session.flush()
            lifted = {name: ["", value] for name, value in entry_row(fields).items()
                      if name in LIFT_COLUMNS}
            self.audit(entry, actor, "lifted", now, lifted)
            changes = {**changes, **lifted}
        action = "created" if before is None else "updated"
        return SaveResult(action, entry.id, changes, entry.customer_ref)

    def background_copies(self) -> BackgroundCopies | None:
        """A thread for create_many's COPY statements, on PostgreSQL (see BackgroundCopies);
        None where the inserts are not COPY (SQLite)."""
        if self.session.get_bind().dialect.name != "postgresql":
            return None
        return BackgroundCopies()

    def create_many(
        self,
        many: Iterable[EntryFields],
        actor: str,
        now: datetime,
        staff: dict[str, Staff],
        copies: BackgroundCopies | None = None,
    ) -> list[SaveResult]:
        """Create new entries from fields already checked (validate), none of them lifted, with
        their numbers and audit records: a few multi-row statements for the whole batch. With
        copies, they are loaded on its thread: settle them before the next statement."""
        batch = list(many)
        if not batch:
            return []
        self.session.flush()
        rows = [entry_columns(fields, staff, now) for fields in batch]
        if self.session.get_bind().dialect.name == "postgresql":
            # Ids drawn first, so that the rows go as one pipelined executemany: a multi-row
            # INSERT ... RETURNING is a long new query text for psycopg to parse every time.
            for row, entry_id in zip(rows, self.session.scalars(
                    select(func.nextval(func.pg_get_serial_sequence("register_entries", "id")))
                    .select_from(func.generate_series(1, len(rows)))), strict=True):
                row["id"] = entry_id
            insert_rows(self.session, RegisterEntry, rows, copies)
            ids = {row["customer_ref"]: row["id"] for row in rows}
        else:
            ids = dict(self.session.execute(
                insert(RegisterEntry).returning(RegisterEntry.customer_ref, RegisterEntry.id),
                rows).all())
        phones = [{"entry_id": ids[f.customer_ref], "number": number, "position": position}
                  for f in batch for position, number in enumerate(f.phone_numbers)]
        insert_rows(self.session, EntryPhone, phones, copies)
        representatives = [
            {"entry_id": ids[f.customer_ref], "number": number, "covered": r.covered}
            for f in batch for r in f.representatives for number in r.phone_numbers]
        insert_rows(self.session, RepresentativePhone, representatives, copies)
        results = [SaveResult("created", ids[f.customer_ref], diff(None, f), f.customer_ref)
                   for f in batch]
        insert_rows(self.session, AuditRecord, [
            {"entry_id": r.entry_id, "customer_ref": r.customer_ref, "actor": actor,
             "action": "created", "at": now, "changes": r.changes} for r in results], copies)
        return results

    def _apply(
        self, entry: RegisterEntry, fields: EntryFields, staff: dict[str, Staff], now: datetime
    ) -> None:
        for name, value in field_columns(fields).items():
            setattr(entry, name, value)
        entry.designated_contact = staff.get(fields.designated_contact)
        entry.fallback_contact = (
            staff.get(fields.fallback) if fields.fallback != VOICEMAIL else None
        )
        entry.representative_phones = [
            RepresentativePhone(number=n, covered=r.covered)
            for r in fields.representatives for n in r.phone_numbers]
        entry.decided_by = staff[fields.decided_by]
        entry.updated_at = now
        wanted = list(fields.phone_numbers)
        kept = [p for p in entry.phones if p.number in wanted]
        entry.phones = kept + [
            EntryPhone(number=n) for n in wanted if n not in {p.number for p in kept}
        ]
        for position, phone in enumerate(
            sorted(entry.phones, key=lambda p: wanted.index(p.number))
        ):
            phone.position = position

    def audit(
        self,
        entry: RegisterEntry,
        actor: str,
        action: str,
        now: datetime,
        changes: dict[str, list[str]],
    ) -> None:
        """Append one audit record; audit records are never updated."""
        self.session.add(
            AuditRecord(
                entry_id=entry.id,
                customer_ref=entry.customer_ref,
                actor=actor,
                action=action,
                at=now,
                changes=changes,
            )
        )

    def lift(self, customer_ref: str, actor: Staff, reason: str, now: datetime) -> RegisterEntry:
        """End a restriction early (a manager's decision, policy 5.2), with the reason."""
        entry = self.get(customer_ref)
        if entry is None:
            raise LookupError(f"no register entry {customer_ref}")
        if not may(actor.role, Capability.DECIDE_RESTRICTIONS):
            raise PermissionError(
                f"{actor.email} is {words.role(actor.role)}; only managers lift entries")
        if not reason.strip():
            raise EntryInvalid([FieldError("reason", "say why the entry is lifted")])
        if entry.lifted_at is not None:
            return entry
        entry.lifted_at, entry.lifted_by, entry.lifted_reason = now, actor, reason.strip()
        entry.updated_at = now
        self.audit(
            entry,
            actor.email,
            "lifted",
            now,
            {"lifted": ["", now.isoformat()], "lifted_reason": ["", reason.strip()]},
        )
        return entry

    def restriction_for(self, number: str, today: date) -> Restriction | None:
        """The restriction on this E.164 number that has not lapsed or been lifted (the DB path)."""
        entry = self.session.scalar(
            select(RegisterEntry)
            .join(EntryPhone)
            .where(
                EntryPhone.number == number,
                RegisterEntry.lifted_at.is_(None),
                RegisterEntry.ends_on >= today,
            )
            .order_by(RegisterEntry.starts_on)
            .limit(1)
        )
        if entry is not None:
            return restriction_of(entry)
        return self._representative_restriction(number, today)

    def _representative_restriction(self, number: str, today: date) -> Restriction | None:
        """The restriction of the entry this number is a representative's on, marked so."""
        row = self.session.execute(
            select(RegisterEntry, RepresentativePhone.covered)
            .join(RepresentativePhone, RepresentativePhone.entry_id == RegisterEntry.id)
            .where(
                RepresentativePhone.number == number,
                RegisterEntry.lifted_at.is_(None),
                RegisterEntry.ends_on >= today,
            )
            .order_by(RegisterEntry.starts_on)
            .limit(1)
        ).first()
        if row is None:
            return None
        return replace(restriction_of(row[0]), representative=True, covered=bool(row[1]))

    def routable(self, today: date) -> Iterator[tuple[str, Restriction]]:
        """(number, restriction) for every entry not lapsed or lifted, for the routing cache."""
        if self.session.get_bind().dialect.name == "postgresql":
            # Streamed through a server-side cursor (yield_per), never all in memory; planned
            # for every row, not a fast start, whose plan on a table just filled (no statistics
            # yet) joined row by row.
            self.session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
        # The routing columns only, as rows (no ORM objects).
        rows = self.session.execute(
            select(EntryPhone.number, *_ROUTING_COLUMNS)
            .join(RegisterEntry)
            .where(RegisterEntry.lifted_at.is_(None), RegisterEntry.ends_on >= today)
            .execution_options(yield_per=_ROUTABLE_PER_FETCH)
        )
        for row in rows:
            yield row.number, restriction_of(row)  # a row has the columns restriction_of reads
        # A representative's number after the entries' own: a person's own number wins.
        holder = aliased(RegisterEntry)
        owned = (select(EntryPhone.id).join(holder, EntryPhone.entry_id == holder.id)
                 .where(EntryPhone.number == RepresentativePhone.number,
                        holder.lifted_at.is_(None), holder.ends_on >= today))
        reps = self.session.execute(
            select(RepresentativePhone.number, RepresentativePhone.covered, RegisterEntry)
            .join(RegisterEntry, RepresentativePhone.entry_id == RegisterEntry.id)
            .where(RegisterEntry.lifted_at.is_(None), RegisterEntry.ends_on >= today,
                   ~owned.exists())
            .order_by(RegisterEntry.starts_on.desc())
        )
        for number, covered, entry in reps:
            yield number, replace(restriction_of(entry), representative=True,
                                  covered=bool(covered))
