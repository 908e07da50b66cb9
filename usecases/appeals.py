"""Appeals against a restriction: recorded with an acknowledgement letter, decided by a manager
not involved (enforced here and in callflow/appeals.py), and flagged when late."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callflow import words
from callflow.appeals import (
    AppealOutcome,
    decide_by,
    involvement_problem,
    read_decision,
    read_receipt,
)
from callflow.register import EntryInvalid, FieldError
from callflow.roles import Capability, may
from config.settings import Settings
from store.db import transaction
from store.models import Appeal, RegisterEntry, Staff
from store.register import RegisterStore
from usecases.notices import add_letter_if_told, long_date
from usecases.register import RegisterService
from usecases.reviews import last_reviewer


@dataclass(frozen=True)
class AppealRecorded:
    """A recorded appeal and its acknowledgement letter."""

    appeal_id: int
    decide_by: date
    letter_id: int | None  # None: the customer is not told in writing


@dataclass(frozen=True)
class AppealDecided:
    """A decided appeal and its outcome letter."""

    appeal_id: int
    outcome: AppealOutcome
    letter_id: int | None  # None: the customer is not told in writing


@dataclass(frozen=True)
class LateAppeal:
    """An appeal not decided by the day it should have been."""

    appeal_id: int
    customer_ref: str
    name: str
    received_on: date
    decide_by: date
    days_late: int


def _staff(session: Session, email: str) -> Staff:
    actor = session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    if actor is None or not actor.active:
        raise PermissionError(f"{email} is not a staff member")
    return actor


def _entry(session: Session, customer_ref: str) -> RegisterEntry:
    entry = RegisterStore(session).get(customer_ref)
    if entry is None or entry.anonymised_at is not None:
        raise LookupError(f"no register entry {customer_ref}")
    return entry


def record_appeal(register: RegisterService, settings: Settings, customer_ref: str,
                  actor_email: str, values: Mapping[str, str], now: datetime,
                  today: date) -> AppealRecorded:
    """Record an appeal as received (any member of staff who reads the register may), with
    its acknowledgement letter and an audit record.

    values holds received_on, channel (letter, email or phone) and grounds. Raises
    LookupError, PermissionError or EntryInvalid (every problem at once).
    """
    receipt, errors = read_receipt(values, today)
    with transaction(register.sessions) as session:
        actor = _staff(session, actor_email)
        if not may(actor.role, Capability.REVIEW_CALLS):
            raise PermissionError(f"{actor.email} is {words.role(actor.role)}; appeals are "
                                  "recorded by supervisors and managers")
        entry = _entry(session, customer_ref)
        if entry.lifted_at is not None:
            errors.insert(0, FieldError("grounds", "the restriction was lifted; there is "
                                                   "nothing to appeal"))
        if receipt is not None and receipt.received_on < entry.decided_on:
            errors.insert(0, FieldError("received_on", "cannot be before the restriction was "
                                                       f"decided, {entry.decided_on.isoformat()}"))
        waiting = open_appeal(session, entry.id)
        if waiting is not None:
            errors.insert(0, FieldError("received_on", "an appeal received on "
                                        f"{waiting.received_on.isoformat()} is still waiting for "
                                        "a decision; add this to it"))
        if errors:
            raise EntryInvalid(errors)
        due = decide_by(receipt.received_on, settings.appeal_decide_within_days)
        appeal = Appeal(entry_id=entry.id, received_on=receipt.received_on,
                        channel=receipt.channel.value, grounds=receipt.grounds,
                        recorded_by_id=actor.id, recorded_at=now, decide_by=due, reasons="")
        session.add(appeal)
        session.flush()
        letter = add_letter_if_told(session, settings, "appeal_received", entry, {
            "today": today, "received_on": long_date(receipt.received_on),
            "channel": receipt.channel.value, "decide_by": long_date(due),
        }, actor.id, now)
        appeal.acknowledgement_id = letter.id if letter else None
        RegisterStore(session).audit(entry, actor.email, "appeal_received", now, {
            "appeal_received_on": ["", receipt.received_on.isoformat()],
            "appeal_channel": ["", receipt.channel.value],
            "appeal_grounds": ["", receipt.grounds],
            "appeal_decide_by": ["", due.isoformat()],
        })
        return AppealRecorded(appeal.id, due, letter.id if letter else None)


def open_appeal(session: Session, entry_id: int) -> Appeal | None:
    """The entry's oldest undecided appeal, or None."""
    return session.scalar(
        select(Appeal).where(Appeal.entry_id == entry_id, Appeal.decided_at.is_(None))
        .order_by(Appeal.received_on, Appeal.id).limit(1)
    )


def who_may_not_decide(session: Session, entry: RegisterEntry) -> tuple[str, str | None]:
    """The emails of who decided the restriction and who last reviewed it."""
    return entry.decided_by.email, last_reviewer(session, entry.id)


def decide_appeal(register: RegisterService, settings: Settings, customer_ref: str,
                  actor_email: str, values: Mapping[str, str], now: datetime,
                  today: date) -> AppealDecided:
    """Decide the entry's open appeal: upheld, varied (the edit form follows) or quashed (the
    entry is lifted and its unsent notices withdrawn), with the outcome letter and an audit
    record. Only a manager who neither decided nor last reviewed the restriction may decide.

    values holds outcome and reasons. Raises LookupError (no entry or no open appeal),
    PermissionError (who may not decide, and why) or EntryInvalid (every problem at once).
    """
    decision, errors = read_decision(values)
    with register.sessions() as session:
        actor = _staff(session, actor_email)
        entry = _entry(session, customer_ref)
        appeal = open_appeal(session, entry.id)
        if appeal is None:
            raise LookupError(f"{customer_ref} has no appeal waiting for a decision")
        refused = involvement_problem(actor.email, actor.role,
                                      *who_may_not_decide(session, entry))
        if refused:
            raise PermissionError(refused)
        appeal_id = appeal.id
    if errors:
        raise EntryInvalid(errors)
    if decision.outcome is AppealOutcome.QUASHED:
        register.lift(customer_ref, actor.email, f"Appeal quashed: {decision.reasons}", now)
    with transaction(register.sessions) as session:
        entry = _entry(session, customer_ref)
        appeal = session.get(Appeal, appeal_id)
        if appeal.decided_at is not None:  # decided by someone else meanwhile
            raise LookupError(f"{customer_ref} has no appeal waiting for a decision")
        appeal.decided_by_id, appeal.decided_at = actor.id, now
        appeal.outcome, appeal.reasons = decision.outcome.value, decision.reasons
        letter = add_letter_if_told(session, settings, "appeal_outcome", entry, {
            "today": today, "received_on": long_date(appeal.received_on),
            "outcome": decision.outcome.value, "reasons": decision.reasons,
            "ends_on": long_date(entry.ends_on),
            "review_on": long_date(entry.review_on) if entry.review_on else "",
            "decided_on": long_date(today),
        }, actor.id, now)
        appeal.outcome_notice_id = letter.id if letter else None
        RegisterStore(session).audit(entry, actor.email, "appeal_decided", now, {
            "appeal_outcome": ["", decision.outcome.value],
            "appeal_reasons": ["", decision.reasons],
        })
        return AppealDecided(appeal.id, decision.outcome, letter.id if letter else None)


def appeals_of(session: Session, entry_id: int) -> list[Appeal]:
    """An entry's appeals, newest first."""
    return list(session.scalars(
        select(Appeal).where(Appeal.entry_id == entry_id)
        .order_by(Appeal.received_on.desc(), Appeal.id.desc())
    ))


def late_appeals(session: Session, today: date) -> list[LateAppeal]:
    """Appeals still undecided after the day they should have been decided by, oldest first."""
    rows = session.execute(
        select(Appeal.id, RegisterEntry.customer_ref, RegisterEntry.name, Appeal.received_on,
               Appeal.decide_by)
        .join(RegisterEntry, RegisterEntry.id == Appeal.entry_id)
        .where(Appeal.decided_at.is_(None), Appeal.decide_by < today,
               RegisterEntry.anonymised_at.is_(None))
        .order_by(Appeal.decide_by, Appeal.id)
    )
    return [LateAppeal(i, ref, name or "", received, due, (today - due).days)
            for i, ref, name, received, due in rows]
