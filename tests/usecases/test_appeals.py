"""Appeals against a real database: recorded and acknowledged, decided only by a manager not
involved, quashing lifts the entry, late ones flagged."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from callflow.register import EntryInvalid
from callflow.reviews import ReviewDecision, ReviewOutcome
from store.db import transaction
from store.models import Appeal, AuditRecord, RegisterEntry
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry
from usecases.appeals import decide_appeal, late_appeals, record_appeal
from usecases.notices import Notices
from usecases.reviews import record_review
from usecases.staff import add_staff
from usecases.upkeep import digest

RECEIPT = {"received_on": "2026-11-30", "channel": "letter",
           "grounds": "I only raised my voice once"}


@pytest.fixture
def managers(services, staff):
    """Two more managers: one who will review the entry, one who is not involved."""
    with transaction(services.sessions) as session:
        for email, name in (("riley@example.org", "Riley"), ("noor@example.org", "Noor")):
            add_staff(session, email=email, name=name, role="manager", now=NOW)


def appeal(services, by="supervisor@example.org", **changes):
    return record_appeal(services.register, services.settings, "QL-1", by,
                         {**RECEIPT, **changes}, NOW, TODAY)


def decide(services, by, outcome="upheld", reasons="The calls were abusive", today=TODAY):
    return decide_appeal(services.register, services.settings, "QL-1", by,
                         {"outcome": outcome, "reasons": reasons}, NOW, today)


def test_an_appeal_is_recorded_with_an_acknowledgement_and_an_audit_record(services, staff):
    add_entry(services)
    recorded = appeal(services)
    assert recorded.decide_by == date(2026, 12, 28)  # 28 days from receipt
    letter = Notices(services.register, services.settings).get(recorded.letter_id)
    assert letter.kind == "appeal_received"
    assert "received by letter on 30 November 2026" in letter.body
    assert "by 28 December 2026" in letter.body
    with services.sessions() as session:
        audit = session.scalars(select(AuditRecord).where(
            AuditRecord.action == "appeal_received")).one()
    assert audit.actor == "supervisor@example.org"
    assert audit.changes["appeal_grounds"] == ["", "I only raised my voice once"]


def test_a_second_appeal_while_one_waits_is_refused(services, staff):
    add_entry(services)
    appeal(services)
    with pytest.raises(EntryInvalid, match="an appeal received on 2026-11-30 is still waiting"):
        appeal(services, received_on="2026-12-01")


def test_every_problem_with_an_appeal_is_reported_at_once_and_agents_may_not_record_one(
        services, staff):
    add_entry(services)
    with pytest.raises(EntryInvalid) as refused:
        appeal(services, received_on="", channel="pigeon", grounds=" ")
    assert [e.field for e in refused.value.errors] == ["received_on", "channel", "grounds"]
    with pytest.raises(EntryInvalid, match="cannot be before the restriction was decided"):
        appeal(services, received_on="2026-11-19")
    with pytest.raises(PermissionError, match="supervisors and managers"):
        appeal(services, by="alex@example.org")


def test_the_manager_who_decided_the_restriction_may_not_decide_the_appeal(services, staff,
                                                                            managers):
    add_entry(services)
    appeal(services)
    with pytest.raises(PermissionError, match="manager@example.org decided this restriction"):
        decide(services, "manager@example.org")
    with pytest.raises(PermissionError, match="only a manager decides an appeal"):
        decide(services, "supervisor@example.org")


def test_the_manager_who_last_reviewed_it_may_not_decide_the_appeal(services, staff, managers):
    add_entry(services)
    record_review(services.register, services.settings, "QL-1", "riley@example.org",
                  ReviewDecision(ReviewOutcome.CONTINUE, "Still needed", date(2027, 4, 1)),
                  NOW, TODAY)
    appeal(services)
    with pytest.raises(PermissionError, match="riley@example.org carried out the last review"):
        decide(services, "riley@example.org")
    decided = decide(services, "noor@example.org")
    letter = Notices(services.register, services.settings).get(decided.letter_id)
    assert "We have decided that the restriction should stay as it is" in letter.body
    assert "Housing Ombudsman" in letter.body and "www.housing-ombudsman.org.uk" in letter.body
    with services.sessions() as session:
        stored = session.scalars(select(Appeal)).one()
        assert (stored.outcome, stored.decided_by.email, stored.decided_at) == (
            "upheld", "noor@example.org", NOW)


def test_quashing_lifts_the_entry_and_withdraws_its_unsent_notice(services, staff, managers):
    add_entry(services)
    notices = Notices(services.register, services.settings)
    restriction = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    appeal(services)
    decide(services, "noor@example.org", outcome="quashed", reasons="No evidence of abuse")
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry))
        assert entry.lifted_by.email == "noor@example.org"
        assert entry.lifted_reason == "Appeal quashed: No evidence of abuse"
        actions = list(session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))
    assert actions[-3:] == ["lifted", "notice_withdrawn", "appeal_decided"]
    assert notices.get(restriction).withdrawn_at == NOW
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None
    with pytest.raises(LookupError, match="no appeal waiting"):
        decide(services, "noor@example.org")


def test_an_appeal_not_decided_in_time_is_flagged_and_in_the_digest(services, staff):
    add_entry(services, decided_on="2026-10-01", starts_on="2026-10-02")
    appeal(services, received_on="2026-10-31")
    with services.sessions() as session:
        assert [(a.customer_ref, a.days_late) for a in late_appeals(session, TODAY)] == [
            ("QL-1", 3)]
        assert late_appeals(session, TODAY - timedelta(days=3)) == []
        assert digest(session, TODAY)["appeals_late"] == [{
            "customer_ref": "QL-1", "received_on": "2026-10-31", "decide_by": "2026-11-28",
            "days_late": 3}]
