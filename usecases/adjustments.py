"""A person's needs and representatives where staff meet them: the screen pop, the letters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from callflow import words
from callflow.adjustments import wants_large_print
from callflow.register import EntryInvalid, entry_row
from callflow.representatives import representative_for, representative_of
from callflow.roles import Capability, may
from store.models import RegisterEntry, Staff
from store.register import RegisterStore, SaveResult, fields_of
from usecases.register import RegisterService

# The register columns record_needs may change.
NEEDS_COLUMNS = ("adjustments", "representatives", "written_only_exception")


def screen_pop(entry: RegisterEntry, number: str | None) -> dict[str, Any]:
    """What an agent sees of the person's needs, and who is calling when it is one of their
    representatives (and whether the arrangements apply to them)."""
    fields = fields_of(entry)
    shown: dict[str, Any] = {"needs": [a.label for a in fields.adjustments],
                             "representative": None}
    rep = representative_for(fields.representatives, number)
    if rep is not None:
        shown["representative"] = {
            "of": representative_of(fields.name, fields.customer_ref),
            "name": rep.name,
            "relationship": rep.relationship,
            "covered": rep.covered,
        }
    return shown


def large_print(entry: RegisterEntry | None) -> bool:
    """True when letters to the person must come in large print."""
    return entry is not None and wants_large_print(fields_of(entry).adjustments)


def record_needs(register: RegisterService, customer_ref: str, actor_email: str,
                 changes: Mapping[str, str], now: datetime, today: date) -> SaveResult:
    """Change an entry's needs, representatives or written-only exception (text columns, as
    the CSV has them), through the register's one write path: checked, audited, cached.

    Raises LookupError (no such entry), PermissionError (not a manager) or EntryInvalid.
    """
    with register.sessions() as session:
        actor = session.scalar(select(Staff).where(Staff.email == actor_email.strip().lower()))
        if actor is None or not actor.active:
            raise PermissionError(f"{actor_email} is not a staff member")
        if not may(actor.role, Capability.DECIDE_RESTRICTIONS):
            raise PermissionError(f"{actor_email} is {words.role(actor.role)}; only a manager "
                                  "changes a restriction (policy 5.2)")
        entry = RegisterStore(session).get(customer_ref)
        if entry is None or entry.anonymised_at is not None:
            raise LookupError(f"{customer_ref} is not on the register")
        row = entry_row(fields_of(entry))
    row.update({name: value for name, value in changes.items() if name in NEEDS_COLUMNS})
    result = register.write([row], actor.email, now, today, creating=False)
    if not result.ok:
        raise EntryInvalid(result.errors)
    return result.saved[0]
