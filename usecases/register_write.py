"""What one register write does inside its transaction: check every entry once, then save.

RegisterService.write (usecases/register.py) holds the transaction and the routing cache around
these steps; the CSV import, the workspace form, the command line and every other writer of the
register come through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy.orm import Session

from callflow.notices import needs_new_notice
from callflow.register import EntryFields, FieldError, Restriction, read_entry
from store.models import RegisterEntry, Staff
from store.notices import withdraw_unsent
from store.register import RegisterStore, SaveResult, diff, fields_of, restriction_of
from usecases.evidence import new_restriction_problems

# An entry to write: its text fields (a CSV row, a form) or fields already typed.
EntryInput = Mapping[str, str] | EntryFields


@dataclass(frozen=True)
class WriteResult:
    """What a register write found and did: nothing is saved unless every entry passed."""

    # Per entry, in the order given: what is wrong with it (empty when nothing is).
    problems: tuple[tuple[FieldError, ...], ...]
    # Per entry, in the order given, when every entry passed and was saved.
    saved: tuple[SaveResult, ...] = ()
    # Entries whose customer must be sent a new restriction notice (policy 5.1).
    renotify: tuple[str, ...] = ()

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
        return sum(1 for result in self.saved if result.action == action)


@dataclass
class Draft:
    """One entry as read and checked: its fields, its problems and the entry it replaces."""

    fields: EntryFields
    problems: list[FieldError]
    stored: RegisterEntry | None


# Wraps the saving of the checked entries, to show progress (the command line's bar).
Progress = Callable[[Sequence[Draft]], Iterable[Draft]]


def each(drafts: Sequence[Draft]) -> Iterable[Draft]:
    """No progress shown: the drafts as they are."""
    return drafts


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


def check_entries(
    store: RegisterStore,
    entries: Sequence[EntryInput],
    today: date,
    creating: bool | None,
    lines: Sequence[int],
) -> tuple[list[Draft], dict[str, Staff]]:
    """Read and check every entry once: against the rules, the register and one another.

    creating is True when every entry must be new, False when each must already exist, None
    when either will do. lines names each entry in messages (a file's line numbers). Returns
    the drafts and the staff by email, for the save.
    """
    read = [read_input(entry) for entry in entries]
    stored = store.get_many(fields.customer_ref for fields, _ in read if fields.customer_ref)
    staff = store.staff_by_email()
    holders = store.number_holders(today)
    seen_refs: dict[str, int] = {}
    batch_numbers: dict[str, str] = {}
    drafts = []
    for line, (fields, problems) in zip(lines, read, strict=True):
        ref = fields.customer_ref
        if ref and ref in seen_refs:
            problems.append(FieldError("customer_ref", f"{ref} is also on line {seen_refs[ref]}"))
        if ref:
            seen_refs.setdefault(ref, line)
        problems += _presence_problems(ref, stored.get(ref), creating)
        # Numbers move between entries within one batch: judge against the batch, not the
        # entries it replaces.
        others = {n: r for n, r in holders.items() if r not in seen_refs or r == ref}
        others.update({n: r for n, r in batch_numbers.items() if r != ref})
        problems += store.validate(fields, today, staff, others, {p.field for p in problems})
        if fields.lifted_at is None and fields.ends_on is not None and fields.ends_on >= today:
            for number in fields.phone_numbers:
                batch_numbers.setdefault(number, ref)
        drafts.append(Draft(fields, problems, stored.get(ref)))
    # policy 5.1: a new restriction's evidence, judged for the whole batch at once.
    for draft, found in zip(drafts, new_restriction_problems(store.session, [
            (d.fields, d.stored is None, {p.field for p in d.problems}) for d in drafts], today),
            strict=True):
        draft.problems += found
    return drafts, staff


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
) -> tuple[list[SaveResult], list[str], list[CacheChange]]:
    """Save checked drafts with their audit records; a lift withdraws unsent notices.

    notify is True when the customer is told of this write by a new notice (the workspace
    form). Returns each save, the entries whose customer must be sent a new notice, and what
    the routing cache must learn of each entry that changed.
    """
    store = RegisterStore(session)
    saved, renotify, cache_changes = [], [], []
    for draft in drafts:
        fields, told = (_notice_date(draft.stored, draft.fields) if notify
                        else (draft.fields, False))
        old_numbers = {p.number for p in draft.stored.phones} if draft.stored else set()
        had_representatives = bool(draft.stored and draft.stored.representative_phones)
        result = store.write(draft.stored, fields, actor, now, staff)
        saved.append(result)
        if result.action == "unchanged":
            continue
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
    return saved, renotify, cache_changes


def _notice_date(stored: RegisterEntry | None,
                 fields: EntryFields) -> tuple[EntryFields, bool]:
    """The fields to save and whether the customer must be sent a new notice (policy 5.1)."""
    if stored is None:
        return fields, True
    before = fields_of(stored)
    told = needs_new_notice(diff(before, fields))
    # policy 5.1: changed arrangements are told in writing, so the old sending date lapses.
    return replace(fields, notice_sent_on=None if told else before.notice_sent_on), told

