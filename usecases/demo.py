"""Fictional demo data for a first start: staff and people of interest on Ofcom drama numbers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from callflow.register import parse_entry
from store.db import transaction
from store.models import Staff
from usecases.register import RegisterService
from usecases.staff import add_staff

DEMO_PASSWORD = "callflow-demo-password"

DEMO_STAFF = (
    ("manager@example.org", "Morgan Manager", "manager", "morgan", "+447700900001"),
    ("supervisor@example.org", "Sam Supervisor", "supervisor", "sam", None),
    ("alex@example.org", "Alex Agent", "agent", "alex", None),
    ("jo@example.org", "Jo Agent", "agent", "jo", None),
    ("admin@example.org", "Ada Admin", "admin", None, None),
)


def demo_rows(today: date) -> list[dict[str, str]]:
    """Register rows covering each arrangement, dated around today."""
    start = (today - timedelta(days=30)).isoformat()
    end = (today + timedelta(days=150)).isoformat()
    review = (today + timedelta(days=10)).isoformat()
    common = {
        "decided_by": "manager@example.org",
        "decided_on": start,
        "starts_on": start,
        "ends_on": end,
        "review_on": review,
        "notice_sent_on": start,
        # policy 5.1: what each restriction rests on, and why no warning letter came first.
        "evidence": "written: call notes and letters held on the housing system",
        "no_warning_reason": "warned in writing before callflow was in use",
        "postal_address": "1 Example Street\nNorthfield\nNF1 1AA",
    }
    return [
        {
            **common,
            "customer_ref": "QL-100001",
            "name": "Pat Example",
            "phone_numbers": "07700 900123",
            "categories": "aggressive_abusive",
            "reason": "Repeated verbal abuse of contact centre staff.",
            "written_only": "yes",
            "staff_notes": "Letters to the correspondence address only.",
        },
        {
            **common,
            "customer_ref": "QL-100002",
            "name": "Chris Sample",
            "phone_numbers": "07700 900456; 0191 498 0456",
            "categories": "unreasonable_persistence",
            "reason": "Daily calls about a closed complaint.",
            "call_windows": "Tue,Thu 10:00-12:00",
            "designated_contact": "alex@example.org",
            "fallback": "voicemail",
            "closed_issues": "CMP-2291: Kitchen refit complaint, ombudsman decision final",
            "staff_notes": "Prefers to be called Chris.",
        },
        {
            **common,
            "customer_ref": "QL-100003",
            "name": "Robin Test",
            "phone_numbers": "+44 7700 900789",
            "categories": "unreasonable_demands",
            "reason": "Demands responses within the hour, many times a day.",
            "designated_contact": "jo@example.org",
            "fallback": "alex@example.org",
            "visits_by_appointment": "yes",
        },
        {
            **common,
            "customer_ref": "QL-100004",
            "name": "Sam Sample",
            "phone_numbers": "07700 900654",
            "categories": "unreasonable_persistence",
            "reason": "Several long calls a day about the same repair.",
            # policy 4.6: one call a day, of up to 15 minutes (warned two minutes before).
            "call_frequency": "1 a day",
            "max_call_minutes": "15",
        },
    ]


def seed_demo(register: RegisterService, now: datetime, today: date) -> bool:
    """Add the demo staff and register once; False if there was data already."""
    with transaction(register.sessions) as session:
        if session.scalar(select(Staff).limit(1)) is not None:
            return False
        for email, name, role, identity, phone in DEMO_STAFF:
            add_staff(
                session,
                email=email,
                name=name,
                role=role,
                now=now,
                password=DEMO_PASSWORD,
                client_identity=identity,
                phone_number=phone,
            )
    for row in demo_rows(today):
        fields, errors = parse_entry(row)
        if errors or fields is None:
            raise ValueError(f"demo data is invalid: {errors}")
        register.save(fields, "demo-seed", now, today)
    register.rebuild_cache(today)
    return True
