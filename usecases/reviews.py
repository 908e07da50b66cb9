"""Reviews of a restriction: recorded with their outcome letter, listed when overdue, and the
optional lapse of a restriction left unreviewed (see callflow/reviews.py for the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callflow import words
from callflow.register import EntryInvalid, FieldError
from callflow.reviews import ReviewDecision, ReviewOutcome, check_review, lapses_unreviewed
from callflow.roles import Capability, may
from config.settings import Settings
from store.db import transaction
from store.models import RegisterEntry, Review, Staff
from store.notices import withdraw_unsent
from store.register import SYSTEM_ACTOR, RegisterStore
from usecases.notices import add_letter_if_told, long_date
from usecases.register import RegisterService


@dataclass(frozen=True)
class ReviewRecorded:
    """What recording a review did."""

    review_id: int
    outcome: ReviewOutcome
    letter_id: int | None  # None: the customer is not told in writing


@dataclass(frozen=True)
class OverdueReview:
    """A restriction in force whose review date has passed without a review."""

    customer_ref: str
    name: str
    review_on: date
    days_overdue: int


def _decider(session: Session, email: str) -> Staff:
    actor = session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    if actor is None or not actor.active:
        raise PermissionError(f"{email} is not a staff member")
    if not may(actor.role, Capability.DECIDE_RESTRICTIONS):
        raise PermissionError(f"{email} is {words.role(actor.role)}; only a manager reviews a "
                              "restriction (policy 5.2)")
    return actor


def record_review(register: RegisterService, settings: Settings, customer_ref: str,
                  actor_email: str, decision: ReviewDecision, now: datetime,
                  today: date) -> ReviewRecorded:
    """Record a manager's review, its outcome letter and its audit record.

    Continue and vary set the next review date (never a new restriction notice: the date
    alone is not a change of arrangements); vary is followed by the entry's edit form, whose
    changes produce the notice. Lift ends the restriction now and withdraws unsent notices.
    Raises LookupError (no such entry), PermissionError (not a manager) or EntryInvalid.
    """
    with register.sessions() as session:
        actor = _decider(session, actor_email)
        entry = RegisterStore(session).get(customer_ref)
        if entry is None or entry.anonymised_at is not None:
            raise LookupError(f"no register entry {customer_ref}")
        errors = check_review(decision, today, entry.starts_on, entry.ends_on,
                              settings.review_max_months)
        if entry.lifted_at is not None:
            errors.insert(0, FieldError("outcome", "the restriction was lifted; there is "
                                                   "nothing to review"))
        elif entry.ends_on < today:
            errors.insert(0, FieldError("outcome", "the restriction has ended; there is "
                                                   "nothing to review"))
    if errors:
        raise EntryInvalid(errors)
    if decision.outcome is ReviewOutcome.LIFT:
        register.lift(customer_ref, actor.email, f"Review: {decision.reasons.strip()}", now)
    with transaction(register.sessions) as session:
        store = RegisterStore(session)
        entry = store.get(customer_ref)
        before = entry.review_on
        after = None if decision.outcome is ReviewOutcome.LIFT else decision.next_review_on
        review = Review(entry_id=entry.id, reviewed_by_id=actor.id, reviewed_at=now,
                        reviewed_on=today, outcome=decision.outcome.value,
                        reasons=decision.reasons.strip(), previous_review_on=before,
                        next_review_on=after)
        session.add(review)
        if after is not None:
            entry.review_on, entry.updated_at = after, now
        letter = add_letter_if_told(session, settings, "review_outcome", entry, {
            "today": today, "reviewed_on": long_date(today), "outcome": decision.outcome.value,
            "reasons": decision.reasons.strip(), "ends_on": long_date(entry.ends_on),
            "next_review_on": long_date(after) if after else "",
        }, actor.id, now)
        review.notice_id = letter.id if letter else None
        session.flush()
        store.audit(entry, actor.email, "reviewed", now, {
            "review_outcome": ["", decision.outcome.value],
            "review_reasons": ["", decision.reasons.strip()],
            "review_on": [before.isoformat() if before else "", after.isoformat() if after
                          else ""],
        })
        return ReviewRecorded(review.id, decision.outcome, letter.id if letter else None)


def overdue_reviews(session: Session, today: date) -> list[OverdueReview]:
    """Restrictions in force whose review date has passed, the longest overdue first."""
    rows = session.execute(
        select(RegisterEntry.customer_ref, RegisterEntry.name, RegisterEntry.review_on)
        .where(RegisterEntry.lifted_at.is_(None), RegisterEntry.anonymised_at.is_(None),
               RegisterEntry.ends_on >= today, RegisterEntry.review_on < today)
        .order_by(RegisterEntry.review_on, RegisterEntry.customer_ref)
    )
    return [OverdueReview(ref, name or "", review_on, (today - review_on).days)
            for ref, name, review_on in rows]


def reviews_of(session: Session, entry_id: int) -> list[Review]:
    """An entry's reviews, newest first, with who carried them out."""
    return list(session.scalars(
        select(Review).where(Review.entry_id == entry_id)
        .order_by(Review.reviewed_at.desc(), Review.id.desc())
    ))


def last_reviewer(session: Session, entry_id: int) -> str | None:
    """The email of the manager who carried out the entry's latest review, or None."""
    latest = session.scalar(
        select(Review).where(Review.entry_id == entry_id)
        .order_by(Review.reviewed_at.desc(), Review.id.desc()).limit(1)
    )
    return latest.reviewed_by.email if latest else None


def lapse_unreviewed(register: RegisterService, after_days: int, now: datetime,
                     today: date) -> list[str]:
    """Lapse each restriction left unreviewed more than `after_days` past its review date
    (0: never), ending it yesterday, audited and withdrawing unsent notices; returns their
    references. Safe to run twice."""
    if after_days <= 0:
        return []
    lapsed: list[str] = []
    yesterday = today - timedelta(days=1)
    with transaction(register.sessions) as session:
        store = RegisterStore(session)
        overdue = session.scalars(
            select(RegisterEntry).where(
                RegisterEntry.lifted_at.is_(None), RegisterEntry.anonymised_at.is_(None),
                RegisterEntry.ends_on >= today, RegisterEntry.review_on < today,
            ).order_by(RegisterEntry.id)
        ).all()
        for entry in overdue:
            if not lapses_unreviewed(entry.review_on, today, after_days):
                continue
            ends_on = max(yesterday, entry.starts_on)
            # Conditional, so a second run at the same moment lapses nothing twice.
            claimed = session.execute(
                update(RegisterEntry)
                .where(RegisterEntry.id == entry.id, RegisterEntry.ends_on >= today)
                .values(ends_on=ends_on, lapse_recorded_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not claimed:
                continue
            store.audit(entry, SYSTEM_ACTOR, "lapsed_unreviewed", now, {
                "ends_on": [entry.ends_on.isoformat(), ends_on.isoformat()],
                "lapsed": ["", f"not reviewed within {after_days} days of its review date, "
                               f"{entry.review_on.isoformat()}"],
            })
            withdraw_unsent(session, entry, SYSTEM_ACTOR, now)
            lapsed.append(entry.customer_ref)
    if lapsed:
        register.sync_cache(today)
    return lapsed
