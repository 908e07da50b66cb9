"""Migration 0006 gives every existing entry a review date: six months after it starts, or its
end date if that comes first."""

from __future__ import annotations

from datetime import date

from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

from store import migrate
from store.db import make_engine
from store.models import RegisterEntry
from tests.conftest import NOW

# The tables as they stood at 0005 (the models have grown since), written through SQL.
OLD_STAFF = table("staff", *(column(n) for n in ("email", "name", "role", "active",
                                                 "created_at")))
OLD_ENTRIES = table("register_entries", *(column(n) for n in (
    "customer_ref", "categories", "reason", "written_only", "call_windows",
    "fallback_voicemail", "visits_by_appointment", "closed_issues", "staff_notes",
    "decided_by_id", "decided_on", "starts_on", "ends_on", "review_on", "created_at",
    "updated_at")))


def entry(ref: str, starts_on: date, ends_on: date, review_on: date | None,
          manager_id: int) -> dict[str, object]:
    return {"customer_ref": ref, "categories": '["aggressive_abusive"]', "reason": "Abuse",
            "written_only": False, "call_windows": "", "fallback_voicemail": False,
            "visits_by_appointment": False, "closed_issues": "[]", "staff_notes": "",
            "decided_by_id": manager_id, "decided_on": starts_on, "starts_on": starts_on,
            "ends_on": ends_on, "review_on": review_on,
            "created_at": NOW.replace(tzinfo=None), "updated_at": NOW.replace(tzinfo=None)}


def test_entries_without_a_review_date_are_given_the_latest_the_rule_allows(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0005")
    with engine.begin() as connection:
        connection.execute(OLD_STAFF.insert().values(
            email="manager@example.org", name="Manager", role="manager", active=True,
            created_at=NOW.replace(tzinfo=None)))
        manager = connection.scalar(select(column("id")).select_from(table("staff")))
        connection.execute(OLD_ENTRIES.insert(), [
            entry("QL-LONG", date(2026, 8, 31), date(2027, 12, 31), None, manager),
            entry("QL-SHORT", date(2026, 11, 1), date(2027, 1, 31), None, manager),
            entry("QL-SET", date(2026, 11, 1), date(2027, 12, 31), date(2027, 2, 1), manager),
        ])
    migrate.upgrade(engine)
    with Session(engine) as session:
        dates = dict(session.execute(
            select(RegisterEntry.customer_ref, RegisterEntry.review_on)).all())
    assert dates == {"QL-LONG": date(2027, 2, 28), "QL-SHORT": date(2027, 1, 31),
                     "QL-SET": date(2027, 2, 1)}
    engine.dispose()
