"""Reviews against a real database: recorded with their letter and audit, never a new
restriction notice for a date alone, overdue ones listed, unreviewed ones lapsed when set."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from callflow.register import EntryInvalid
from callflow.reviews import ReviewDecision, ReviewOutcome
from store.models import AuditRecord, Notice, RegisterEntry, Review
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry
from usecases.notices import Notices
from usecases.reviews import lapse_unreviewed, overdue_reviews, record_review
from usecases.upkeep import digest, record_lapses

MANAGER = "manager@example.org"


def review(services, outcome: str, reasons: str = "Calls have reduced",
           next_review: date | None = None, by: str = MANAGER, today: date = TODAY):
    return record_review(services.register, services.settings, "QL-1", by,
                         ReviewDecision(ReviewOutcome(outcome), reasons, next_review),
                         NOW, today)


def entry(services) -> RegisterEntry:
    with services.sessions() as session:
        return session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == "QL-1"))


def kinds(services) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(select(Notice.kind).order_by(Notice.id)))


def test_continuing_sets_the_next_date_writes_the_outcome_letter_and_no_restriction_notice(
        services, staff):
    add_entry(services, notice_sent_on="2026-11-25")
    recorded = review(services, "continue", next_review=date(2027, 5, 1))
    assert entry(services).review_on == date(2027, 5, 1)
    assert entry(services).notice_sent_on == date(2026, 11, 25)
    assert kinds(services) == ["review_outcome"]
    letter = Notices(services.register, services.settings).get(recorded.letter_id)
    assert "We have decided to keep the arrangements as they are" in letter.body
    assert "by 1 May 2027" in letter.body and "Housing Ombudsman" in letter.body
    with services.sessions() as session:
        stored = session.get(Review, recorded.review_id)
        assert (stored.outcome, stored.previous_review_on, stored.next_review_on,
                stored.reviewed_by.email, stored.reviewed_on) == (
            "continue", date(2027, 3, 1), date(2027, 5, 1), MANAGER, TODAY)
        audit = session.scalars(select(AuditRecord).where(AuditRecord.action == "reviewed")).one()
    assert audit.changes == {"review_outcome": ["", "continue"],
                             "review_reasons": ["", "Calls have reduced"],
                             "review_on": ["2027-03-01", "2027-05-01"]}


def test_a_later_edit_may_keep_a_review_date_counted_from_the_last_review(services, staff):
    add_entry(services, decided_on="2026-01-01", starts_on="2026-01-05",
              review_on="2026-07-01")
    review(services, "continue", next_review=date(2027, 5, 1))
    # 2027-05-01 is more than six months after the start, but within six of the review.
    fields = next(services.register.every_entry())
    saved = services.register.save(replace(fields, staff_notes="Reviewed"), MANAGER, NOW, TODAY)
    assert saved.action == "updated"


def test_every_problem_with_a_review_is_reported_at_once(services, staff):
    add_entry(services)
    with pytest.raises(EntryInvalid) as refused:
        review(services, "continue", reasons="", next_review=TODAY + timedelta(days=400))
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("reasons", "say why you decided this"),
        ("review_on", "must be on or before the end date, 2027-05-31"),
    ]
    assert kinds(services) == []


def test_only_a_manager_reviews(services, staff):
    add_entry(services)
    with pytest.raises(PermissionError, match="only a manager reviews"):
        review(services, "continue", next_review=date(2027, 4, 1),
               by="supervisor@example.org")


def test_lifting_at_review_lifts_withdraws_unsent_notices_and_writes_the_letter(services,
                                                                                staff):
    add_entry(services)
    notices = Notices(services.register, services.settings)
    restriction = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    recorded = review(services, "lift", reasons="No contact problems for three months")
    lifted = entry(services)
    assert lifted.lifted_at == NOW and lifted.lifted_reason.startswith("Review: No contact")
    assert notices.get(restriction).withdrawn_at == NOW
    assert "We have decided to end the restriction" in notices.get(recorded.letter_id).body
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None
    with pytest.raises(EntryInvalid, match="the restriction was lifted"):
        review(services, "continue", next_review=date(2027, 4, 1))


def test_overdue_reviews_are_listed_and_in_the_digest(services, staff):
    add_entry(services, customer_ref="QL-1", review_on="2026-11-28")
    add_entry(services, customer_ref="QL-2", phone_numbers="07700 900456",
              review_on="2026-12-01")
    with services.sessions() as session:
        assert [(r.customer_ref, r.days_overdue) for r in overdue_reviews(session, TODAY)] == [
            ("QL-1", 3)]
        found = digest(session, TODAY)
    assert found["reviews_overdue"] == [
        {"customer_ref": "QL-1", "review_on": "2026-11-28", "days_overdue": 3}]


def test_an_unreviewed_restriction_lapses_only_when_the_setting_asks(services, staff):
    add_entry(services, review_on="2026-11-26")
    later = TODAY + timedelta(days=40)
    assert lapse_unreviewed(services.register, 0, NOW, later) == []
    assert record_lapses(services.register, NOW, later) == []
    assert record_lapses(services.register, NOW, later, unreviewed_after_days=30) == ["QL-1"]
    assert record_lapses(services.register, NOW, later, unreviewed_after_days=30) == []
    lapsed = entry(services)
    assert lapsed.ends_on == later - timedelta(days=1) and lapsed.lapse_recorded_at == NOW
    assert services.lookup.lookup("07700 900123", later).restriction is None
    with services.sessions() as session:
        audit = session.scalars(select(AuditRecord).where(
            AuditRecord.action == "lapsed_unreviewed")).one()
    assert audit.actor == "system"
    assert audit.changes["ends_on"] == ["2027-05-31", (later - timedelta(days=1)).isoformat()]
