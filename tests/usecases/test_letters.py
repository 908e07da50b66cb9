"""Letters for every step against a real database: each carries the postal address, what
happens next and the Housing Ombudsman; lifting and lapsing write their letters and withdraw
those that no longer apply; a customer not told in writing gets none, and why is recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from callflow.reviews import ReviewDecision, ReviewOutcome
from service import cli
from store.db import transaction
from store.models import Appeal, AuditRecord, Notice, RegisterEntry, Review, Staff
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry, entry_form
from usecases.appeals import decide_appeal, record_appeal
from usecases.notices import NoticeRefused, Notices
from usecases.reviews import record_review
from usecases.upkeep import record_lapses
from workers import upkeep
from workers.context import use_services

MANAGER = "manager@example.org"
ADDRESS = "Flat 2\n10 High Street\nNorthfield NF1 2AB"
OMBUDSMAN = ("# If you are unhappy with how we have dealt with you\n\n"
             "You can make a complaint under our Complaints, Compliments and Compensation "
             "Policy. If you are still unhappy once our complaints process is complete, you can "
             "ask the Housing Ombudsman Service to look at it:\n\n"
             "- online at www.housing-ombudsman.org.uk\n"
             "- by phone on 0300 111 3000\n"
             "- by post to Housing Ombudsman Service, PO Box 152, Liverpool L33 7WQ\n")


def notices(services) -> Notices:
    return Notices(services.register, services.settings)


def letters(services, ref: str = "QL-1") -> list[tuple[str, datetime | None]]:
    with services.sessions() as session:
        return list(session.execute(select(Notice.kind, Notice.withdrawn_at)
                                    .where(Notice.customer_ref == ref).order_by(Notice.id)))


def entry(services) -> RegisterEntry:
    with services.sessions() as session:
        return session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == "QL-1"))


def body(services, notice_id: int) -> str:
    return notices(services).get(notice_id).body


def test_every_kind_of_letter_carries_the_address_next_steps_and_the_ombudsman(services,
                                                                               staff):
    add_entry(services, postal_address=ADDRESS)
    with transaction(services.sessions) as session:
        session.add(Staff(email="noor@example.org", name="Noor", role="manager",
                          created_at=NOW))
    made = notices(services)
    ids = {
        "warning": made.produce_warning("QL-1", "Pat Example", ["aggressive_abusive"],
                                        "Shouting at staff", staff["manager"].id, NOW, TODAY),
        "restriction": made.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY),
        "review_outcome": record_review(
            services.register, services.settings, "QL-1", MANAGER,
            ReviewDecision(ReviewOutcome.CONTINUE, "Calls have reduced", date(2027, 4, 1)),
            NOW, TODAY).letter_id,
        "appeal_received": record_appeal(
            services.register, services.settings, "QL-1", "supervisor@example.org",
            {"received_on": "2026-11-30", "channel": "letter", "grounds": "Unfair"},
            NOW, TODAY).letter_id,
    }
    ids["appeal_outcome"] = decide_appeal(
        services.register, services.settings, "QL-1", "noor@example.org",
        {"outcome": "upheld", "reasons": "The calls were abusive"}, NOW, TODAY).letter_id
    ids["lift"] = made.lift("QL-1", MANAGER, "No problems for three months", NOW, TODAY)
    for kind, notice_id in ids.items():
        text = body(services, notice_id)
        assert "Pat Example\nFlat 2\n10 High Street\nNorthfield NF1 2AB\nOur reference: QL-1\n" \
            in text, kind
        assert OMBUDSMAN in text, kind
        assert text.count("Housing Ombudsman Service") == 2 if kind == "appeal_outcome" else 1
    assert "# What happens next" in body(services, ids["lift"])


def test_a_warning_letter_takes_the_address_given_or_else_the_entrys(services, staff):
    made = notices(services)
    given = made.produce_warning("QL-9", "Sam Other", ["unreasonable_demands"], "Daily emails",
                                 staff["manager"].id, NOW, TODAY, "1 Low Road\nNorthfield")
    assert "Sam Other\n1 Low Road\nNorthfield\nOur reference: QL-9\n" in body(services, given)
    add_entry(services, postal_address=ADDRESS)
    taken = made.produce_warning("QL-1", "Pat Example", ["aggressive_abusive"], "Shouting",
                                 staff["manager"].id, NOW, TODAY)
    assert f"Pat Example\n{ADDRESS}\nOur reference: QL-1\n" in body(services, taken)


def test_lifting_writes_the_lift_letter_and_withdraws_letters_that_no_longer_apply(services,
                                                                                   staff):
    add_entry(services, postal_address=ADDRESS)
    made = notices(services)
    restriction = made.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    review = record_review(
        services.register, services.settings, "QL-1", MANAGER,
        ReviewDecision(ReviewOutcome.CONTINUE, "Calls have reduced", date(2027, 4, 1)),
        NOW, TODAY).letter_id
    later = NOW + timedelta(hours=1)
    lift = made.lift("QL-1", MANAGER, "Behaviour has improved", later, TODAY)
    assert letters(services) == [("restriction", later), ("review_outcome", later),
                                 ("lift", None)]
    assert (made.get(restriction).withdrawn_at, made.get(review).withdrawn_at) == (later, later)
    text = body(services, lift)
    assert "We have decided to end that restriction early, from 1 December 2026." in text
    assert "Behaviour has improved" in text
    assert "You can contact us in the usual ways again" in text
    with services.sessions() as session:
        withdrawn = session.scalar(select(AuditRecord).where(
            AuditRecord.action == "notice_withdrawn"))
    assert withdrawn.changes == {"unsent_notices": ["2", "withdrawn"]}


def test_a_customer_not_told_gets_no_lift_letter_and_the_reason_is_audited(services, staff):
    add_entry(services)
    letter = notices(services).lift("QL-1", MANAGER, "Moved away", NOW, TODAY,
                                    not_told_reason="  Writing to them would put them at risk ")
    assert letter is None
    assert letters(services) == []
    assert entry(services).not_told_reason == "Writing to them would put them at risk"
    with services.sessions() as session:
        records = session.scalars(select(AuditRecord).where(
            AuditRecord.action.in_(("lifted", "not_told"))).order_by(AuditRecord.id)).all()
    assert [(r.action, r.actor) for r in records] == [("lifted", MANAGER), ("not_told", MANAGER)]
    assert records[1].changes == {
        "not_told_reason": ["", "Writing to them would put them at risk"]}


def test_a_customer_not_told_is_sent_no_restriction_notice_on_any_path(services, staff):
    result = services.register.write([
        entry_form(not_told_reason="Police advise against writing")],
        MANAGER, NOW, TODAY, creating=True, notify=True)
    assert result.ok and result.renotify == ()
    with pytest.raises(NoticeRefused, match="is not told in writing "
                                            r"\(Police advise against writing\)"):
        notices(services).produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    assert letters(services) == []


def test_a_restriction_that_ends_gets_one_lapse_letter_unless_not_told(services, staff):
    add_entry(services, ends_on="2026-12-31", review_on="2026-12-20", postal_address=ADDRESS)
    add_entry(services, customer_ref="QL-2", phone_numbers="07700 900456", ends_on="2026-12-31",
              review_on="2026-12-20", not_told_reason="Risk of harm")
    new_year = date(2027, 1, 1)
    moment = datetime(2027, 1, 1, 2, 15, tzinfo=UTC)
    assert record_lapses(services.register, moment, new_year) == ["QL-1", "QL-2"]
    made = notices(services)
    produced = made.produce_lapse_letters(moment, new_year)
    assert len(produced) == 1 and made.get(produced[0]).customer_ref == "QL-1"
    text = body(services, produced[0])
    assert "That restriction ended on 31 December 2026." in text
    assert f"Pat Example\n{ADDRESS}\n" in text and OMBUDSMAN in text
    assert made.produce_lapse_letters(moment, new_year) == []  # running twice does no harm
    assert letters(services, "QL-2") == []


def test_an_end_recorded_long_ago_is_not_written_to_now(services, staff):
    add_entry(services, ends_on="2026-12-31", review_on="2026-12-20")
    new_year = date(2027, 1, 1)
    recorded_at = datetime(2027, 1, 1, 2, 15, tzinfo=UTC)
    record_lapses(services.register, recorded_at, new_year)
    later = recorded_at + timedelta(days=15)
    assert notices(services).produce_lapse_letters(later, new_year + timedelta(days=15)) == []


def test_the_daily_lapse_job_writes_the_lapse_letters(services, staff, clock):
    add_entry(services, ends_on="2026-12-31", review_on="2026-12-20")
    clock.set(datetime(2027, 1, 1, 2, 15, tzinfo=UTC))
    use_services(services)
    try:
        assert upkeep.record_lapses_job() == ["QL-1"]
        assert upkeep.record_lapses_job() == []
    finally:
        use_services(None)
    assert letters(services) == [("lapse", None)]


def test_reviews_and_appeals_of_a_customer_not_told_queue_no_letter(services, staff,
                                                                    monkeypatch):
    add_entry(services, not_told_reason="Writing would put them at risk")
    with transaction(services.sessions) as session:
        session.add(Staff(email="noor@example.org", name="Noor", role="manager",
                          created_at=NOW))
    reviewed = record_review(
        services.register, services.settings, "QL-1", MANAGER,
        ReviewDecision(ReviewOutcome.CONTINUE, "Calls have reduced", date(2027, 4, 1)),
        NOW, TODAY)
    received = record_appeal(
        services.register, services.settings, "QL-1", "supervisor@example.org",
        {"received_on": "2026-11-30", "channel": "phone", "grounds": "Unfair"}, NOW, TODAY)
    monkeypatch.setattr(cli, "services", lambda: services)
    decided = CliRunner().invoke(cli.main, [
        "register", "appeal-decision", "QL-1", "--by", "noor@example.org",
        "--outcome", "upheld", "--reasons", "The calls were abusive"])
    assert (reviewed.letter_id, received.letter_id) == (None, None)
    assert decided.exit_code == 0, decided.output
    assert decided.output == ("QL-1: appeal upheld; no letter: the customer is not told in "
                              "writing\n")
    assert letters(services) == []
    with services.sessions() as session:
        review = session.scalar(select(Review))
        appeal = session.scalar(select(Appeal))
    assert (review.notice_id, appeal.acknowledgement_id, appeal.outcome_notice_id,
            appeal.outcome) == (None, None, None, "upheld")
