"""What one register write does inside its transaction: check every entry once, then save.

RegisterService.write (usecases/register.py) holds the transaction and the routing cache around
these steps; the CSV import, the workspace form, the command line and every other writer of the
register come through it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from itertools import islice
from typing import TypeVar

from sqlalchemy.orm import Session

from callflow.notices import needs_new_notice
from callflow.register import EntryFields, FieldError, Restriction, read_entry
from store.models import RegisterEntry, Staff
from store.notices import withdraw_unsent
from store.register import (
    BackgroundCopies,
    RegisterStore,
    SaveResult,
    diff,
    fields_of,
    restriction_of,
)
from usecases.evidence import new_restriction_problems

# An entry to write: its text fields (a CSV row, a form) or fields already typed.
EntryInput = Mapping[str, str] | EntryFields


@dataclass(frozen=True)
class WriteResult:
    """What a register write found and did: nothing is saved unless every entry passed."""

    # Per entry, in the order given: what is wrong with it (empty when nothing is).
    problems: tuple[tuple[FieldError, ...], ...]
    # Per entry, in the order given, when every entry passed and was saved (not a bulk write's).
    saved: tuple[SaveResult, ...] = ()
    # Entries whose customer must be sent a new restriction notice (policy 5.1).
    renotify: tuple[str, ...] = ()
    # A bulk write's saves, by action, in place of saved (an import of a million entries).
    counted: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every entry passed and was saved."""
        return not any(self.problems)

    @property
    def errors(self) -> list[FieldError]:
        """Every problem found, entry by entry (for one entry: its field errors)."""
        return [error for problems in self.problems for error in problems]

    def count(self, action: str) -> int:
        """How many entries were created, updated or unchanged."""
        if self.counted:
            return self.counted.get(action, 0)
        return sum(1 for result in self.saved if result.action == action)


@dataclass
class Draft:
    """One entry as read and checked: its fields, its problems and the entry it replaces."""

    fields: EntryFields
    problems: list[FieldError]
    stored: RegisterEntry | None


# Wraps the entries of a write as they are checked and saved, to show progress (the command
# line's bar).
Progress = Callable[[Sequence[EntryInput]], Iterable[EntryInput]]


def each(entries: Sequence[EntryInput]) -> Iterable[EntryInput]:
    """No progress shown: the entries as they are."""
    return entries


@dataclass(frozen=True)
class CacheChange:
    """What the routing cache must learn of one saved entry after the commit."""

    numbers: tuple[str, ...]
    restriction: Restriction | None
    removed: frozenset[str]
    # Representatives' numbers carry their own routing values: only a rebuild writes those.
    rebuild: bool = False


def read_input(entry: EntryInput) -> tuple[EntryFields, list[FieldError]]:
    """Typed fields and the problems found reading them (none for fields already typed)."""
    if isinstance(entry, EntryFields):
        return entry, []
    return read_entry(entry)


class Checker:
    """Checks a write's entries a chunk at a time, against the rules, the register and the
    entries before them; it keeps only what later entries are judged against (references and
    numbers), so that a large file need not be held whole."""

    def __init__(self, store: RegisterStore, today: date, creating: bool | None):
        self.store, self.today, self.creating = store, today, creating
        self.staff = store.staff_by_email()
        # Read before anything is saved: the register as the write found it.
        self.holders = store.number_holders(today)
        self.seen_refs: dict[str, int] = {}
        self.batch_numbers: dict[str, str] = {}

    @staticmethod
    def read(chunk: Sequence[EntryInput]) -> list[tuple[EntryFields, list[FieldError]]]:
        """The chunk's typed fields and the problems found reading them: the core's parsing
        alone, with no use of the database."""
        return [read_input(entry) for entry in chunk]

    def judge(self, read: Sequence[tuple[EntryFields, list[FieldError]]],
              lines: Sequence[int]) -> list[Draft]:
        """Check a chunk as read (see read) against the rules, the register and the entries
        before it, once (lines names them in messages)."""
        store, today = self.store, self.today
        # The stored entries are read a chunk at a time (one query each), not row by row.
        stored = store.get_many(fields.customer_ref for fields, _ in read if fields.customer_ref)
        drafts = []
        for line, (fields, problems) in zip(lines, read, strict=True):
            ref = fields.customer_ref
            if ref and ref in self.seen_refs:
                problems.append(FieldError("customer_ref",
                                           f"{ref} is also on line {self.seen_refs[ref]}"))
            if ref:
                self.seen_refs.setdefault(ref, line)
            problems += _presence_problems(ref, stored.get(ref), self.creating)
            # Numbers move between entries within one batch: judge against the batch, not the
            # entries it replaces.
            others = _Holders(self.holders, self.batch_numbers, self.seen_refs, ref)
            problems += store.validate(fields, today, self.staff, others,
                                       {p.field for p in problems})
            if (fields.lifted_at is None and fields.ends_on is not None
                    and fields.ends_on >= today):
                for number in fields.phone_numbers:
                    self.batch_numbers.setdefault(number, ref)
            drafts.append(Draft(fields, problems, stored.get(ref)))
        # policy 5.1: a new restriction's evidence, judged for the chunk at once.
        for draft, found in zip(drafts, new_restriction_problems(store.session, [
                (d.fields, d.stored is None, {p.field for p in d.problems}) for d in drafts],
                today), strict=True):
            draft.problems += found
        return drafts


class Refused(Exception):
    """Some entry of a write has a problem: raised inside its transaction, to roll it back."""

    def __init__(self, problems: tuple[tuple[FieldError, ...], ...]):
        super().__init__(f"{sum(1 for found in problems if found)} entries with problems")
        self.problems = problems


def check_and_save(
    store: RegisterStore,
    entries: Sequence[EntryInput],
    lines: Sequence[int],
    today: date,
    creating: bool | None,
    actor: str,
    now: datetime,
    notify: bool,
    bulk: bool,
    progress: Progress,
) -> tuple[list[SaveResult], list[str], list[CacheChange], Counter[str]]:
    """Check and save the entries a chunk at a time in the caller's transaction, holding only
    a chunk's fields at once; raise Refused, with every entry's problems, if any has one.

    Once an entry has a problem nothing more is saved, but every entry is still checked, so that
    all problems are reported at once; the caller's transaction rolls back what was saved
    (all or nothing). See save_drafts for what is returned; a bulk write counts what it did
    (the last item) rather than keep a result per entry, and on PostgreSQL loads its new
    entries (COPY) on a thread while the next chunk is read.
    """
    checker = Checker(store, today, creating)
    problems: list[tuple[FieldError, ...]] = []
    refused = False
    saved: list[SaveResult] = []
    counted: Counter[str] = Counter()
    renotify: list[str] = []
    changed: list[CacheChange] = []
    copies = store.background_copies() if bulk else None
    try:
        for chunk_lines, chunk in zip(_chunks(lines, CHUNK), _chunks(progress(entries), CHUNK),
                                      strict=True):
            read = checker.read(chunk)  # the core's parsing, while the chunk before loads
            if copies is not None:
                copies.settle()  # the chunk before is loaded: the connection is free again
            drafts = checker.judge(read, chunk_lines)
            problems += (tuple(draft.problems) for draft in drafts)
            refused = refused or any(draft.problems for draft in drafts)
            if refused:
                continue
            done = save_drafts(store.session, drafts, checker.staff, actor, now, notify, bulk,
                               copies)
            if bulk:
                counted.update(result.action for result in done[0])
            else:
                saved += done[0]
            renotify += done[1]
            changed += done[2]
        if copies is not None:
            copies.settle()
    finally:
        if copies is not None:
            copies.close()  # before the caller's transaction commits or rolls back
    if refused:
        raise Refused(tuple(problems))
    return saved, renotify, changed, counted


# Entries read, or saved, per round of statements.
CHUNK = 1000

T = TypeVar("T")


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Items in lists of at most size."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _Holders(Mapping[str, str]):
    """Who else holds each number, for one entry of a batch, without copying the register's
    numbers for every row: the batch's own claims first, then the register's, except for
    entries the batch has already replaced."""

    def __init__(self, holders: Mapping[str, str], batch: Mapping[str, str],
                 seen: Mapping[str, int], ref: str):
        self.holders, self.batch, self.seen, self.ref = holders, batch, seen, ref

    def __getitem__(self, number: str) -> str:
        claimed = self.batch.get(number)
        if claimed is not None and claimed != self.ref:
            return claimed
        holder = self.holders[number]
        if holder in self.seen and holder != self.ref:
            raise KeyError(number)
        return holder

    def __iter__(self) -> Iterator[str]:
        return (number for number in {**self.holders, **self.batch} if number in self)

    def __len__(self) -> int:
        return sum(1 for _number in self)


def _presence_problems(ref: str, stored: RegisterEntry | None,
                       creating: bool | None) -> list[FieldError]:
    if not ref or creating is None:
        return []
    if creating and stored is not None:
        return [FieldError("customer_ref",
                           f"{ref} is already on the register; edit that entry instead")]
    if not creating and stored is None:
        return [FieldError("customer_ref", f"{ref} is not on the register")]
    return []


def save_drafts(
    session: Session,
    drafts: Iterable[Draft],
    staff: dict[str, Staff],
    actor: str,
    now: datetime,
    notify: bool,
    bulk: bool = False,
    copies: BackgroundCopies | None = None,
) -> tuple[list[SaveResult], list[str], list[CacheChange]]:
    """Save checked drafts with their audit records; a lift withdraws unsent notices.

    notify is True when the customer is told of this write by a new notice (the workspace
    form). bulk is True when the routing cache is rebuilt after the commit (and the saves of
    new entries then carry no changes, which their audit records hold). Returns each save,
    the entries whose customer must be sent a new notice, and what the routing cache must
    learn of each entry that changed. With copies, new entries are loaded on their thread
    (see BackgroundCopies), settled before any other save.
    """
    store = RegisterStore(session)
    saved: list[SaveResult] = []
    renotify: list[str] = []
    cache_changes: list[CacheChange] = []
    for chunk in _chunks(drafts, CHUNK):
        # New entries not lifted: a few multi-row statements for the chunk. The rest (updates,
        # lifts) one by one, as they may withdraw notices and move numbers.
        created = {r.customer_ref: r for r in store.create_many(
            [d.fields for d in chunk if _creates(d)], actor, now, staff, copies)}
        for draft in chunk:
            if not _creates(draft):
                if copies is not None:
                    copies.settle()
                _save_one(session, store, draft, staff, actor, now, notify, saved, renotify,
                          cache_changes)
                continue
            result = created[draft.fields.customer_ref]
            saved.append(result)  # a bulk write's caller only counts them
            if notify and not draft.fields.not_told_reason:  # policy 5.1: a new entry is told
                renotify.append(result.customer_ref)
            if bulk:  # the cache is rebuilt after the commit: it needs no entry's details
                cache_changes.append(_REBUILD)
                continue
            entry = store.get_by_id(result.entry_id)
            cache_changes.append(CacheChange(
                tuple(p.number for p in entry.phones), restriction_of(entry), frozenset(),
                bool(entry.representative_phones)))
    return saved, renotify, cache_changes


# What a bulk write's new entry tells the cache: only that it is rebuilt (one shared value).
_REBUILD = CacheChange((), None, frozenset(), True)


def _creates(draft: Draft) -> bool:
    """True for a new entry not lifted, which is created with the rest of its chunk."""
    return draft.stored is None and draft.fields.lifted_at is None


def _save_one(session: Session, store: RegisterStore, draft: Draft, staff: dict[str, Staff],
              actor: str, now: datetime, notify: bool, saved: list[SaveResult],
              renotify: list[str], cache_changes: list[CacheChange]) -> None:
    """Save one draft through the ORM: an update, or an entry created lifted."""
    fields, told = (_notice_date(draft.stored, draft.fields) if notify
                    else (draft.fields, False))
    old_numbers = {p.number for p in draft.stored.phones} if draft.stored else set()
    had_representatives = bool(draft.stored and draft.stored.representative_phones)
    result = store.write(draft.stored, fields, actor, now, staff)
    saved.append(result)
    if result.action == "unchanged":
        return
    entry = store.get_by_id(result.entry_id)
    if "lifted_at" in result.changes:
        # A lifted restriction is not told to anyone: no path may leave its letter to send.
        withdraw_unsent(session, entry, actor, now)
    if told and not fields.not_told_reason:  # not told in writing (ICO): no letter queued
        renotify.append(result.customer_ref)
    numbers = tuple(p.number for p in entry.phones)
    cache_changes.append(CacheChange(
        numbers, None if entry.lifted_at else restriction_of(entry),
        frozenset(old_numbers - set(numbers)),
        had_representatives or bool(entry.representative_phones)))


def _notice_date(stored: RegisterEntry | None,
                 fields: EntryFields) -> tuple[EntryFields, bool]:
    """The fields to save and whether the customer must be sent a new notice (policy 5.1)."""
    if stored is None:
        return fields, True
    before = fields_of(stored)
    told = needs_new_notice(diff(before, fields))
    # policy 5.1: changed arrangements are told in writing, so the old sending date lapses.
    return replace(fields, notice_sent_on=None if told else before.notice_sent_on), told

