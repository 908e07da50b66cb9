"""Migration 0006 gives every existing entry a review date: six months after it starts, or its
end date if that comes first."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import migrate
from store.db import make_engine
from store.models import RegisterEntry, Staff
from tests.conftest import NOW


def entry(ref: str, starts_on: date, ends_on: date, review_on: date | None,
          manager: Staff) -> RegisterEntry:
    return RegisterEntry(customer_ref=ref, categories=["aggressive_abusive"], reason="Abuse",
                         decided_by=manager, decided_on=starts_on, starts_on=starts_on,
                         ends_on=ends_on, review_on=review_on, created_at=NOW, updated_at=NOW)


def test_entries_without_a_review_date_are_given_the_latest_the_rule_allows(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0005")
    with Session(engine) as session:
        manager = Staff(email="manager@example.org", name="Manager", role="manager",
                        created_at=NOW)
        session.add_all([
            entry("QL-LONG", date(2026, 8, 31), date(2027, 12, 31), None, manager),
            entry("QL-SHORT", date(2026, 11, 1), date(2027, 1, 31), None, manager),
            entry("QL-SET", date(2026, 11, 1), date(2027, 12, 31), date(2027, 2, 1), manager),
        ])
        session.commit()
    migrate.upgrade(engine)
    with Session(engine) as session:
        dates = dict(session.execute(
            select(RegisterEntry.customer_ref, RegisterEntry.review_on)).all())
    assert dates == {"QL-LONG": date(2027, 2, 28), "QL-SHORT": date(2027, 1, 31),
                     "QL-SET": date(2027, 2, 1)}
    engine.dispose()
