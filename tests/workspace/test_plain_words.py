"""What a person reads is plain English: no codes, field names, raw values or ISO timestamps."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from callflow.register import Category
from store.db import transaction
from store.models import AuditRecord, Incident, Notice
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry, post
from usecases.notices import NoticeRefused, Notices

THREAT = "threat_or_violence"
CODE_IN_A_WORD = re.compile(r"[A-Za-z]_[A-Za-z]")
ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def visible(response) -> str:
    """The text a person sees: no scripts, styles, tags or attribute values."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def leaks(text: str) -> list[str]:
    """Codes, field names and raw timestamps found in a page's text."""
    found = CODE_IN_A_WORD.findall(text) + ISO_MOMENT.findall(text) + ISO_DATE.findall(text)
    found += [c.value for c in Category if c.value in text]
    for raw in ("is a agent", "participant-join", "reason:"):
        if raw in text:
            found.append(raw)
    found += re.findall(r"register entry \d+", text)
    return found


@pytest.fixture
def a_threat_call(services, staff):
    """An entry, a call on it ended by the agent for threats, with an incident and a warning."""
    result = add_entry(services, customer_ref="QL-7", written_only="no",
                       call_windows="Tue,Thu 10:00-12:00", designated_contact="alex@example.org",
                       fallback="voicemail")
    alex = staff["agent"].id
    sid = add_call(services, NOW, decision="designated_contact", entry_id=result.entry_id,
                   agent_id=alex, warned=True, ended_by_agent=True, incident=True, events=(
        ("received", {"from": "+447700900123", "withheld": False}),
        ("lookup", {"source": "cache", "failed": False, "entry_id": result.entry_id}),
        ("decision", {"outcome": "designated_contact",
                      "reason": f"register entry {result.entry_id}: to the designated point of "
                                "contact (4.6)"}),
        ("dialled", {"staff_id": alex, "leg": "designated"}),
        ("conference", {"event": "participant-join"}),
        ("connected", {"staff_id": alex, "leg": "designated"}),
        ("ended_by_agent", {"staff_id": alex, "reason": THREAT, "note": "",
                            "closing_statement": False}),
        ("incident", {"staff_id": alex, "incident_id": 1, "category": THREAT}),
        ("status", {"status": "no-answer", "duration": 0}),
    ))
    with transaction(services.sessions) as session:
        session.add(Incident(call_sid=sid, reported_by_id=alex, reported_at=NOW,
                             category=THREAT, notes="", status="open"))
    return sid


def test_a_call_ended_for_threats_reads_as_what_happened(supervisor, a_threat_call):
    text = visible(supervisor.get(f"/workspace/calls/{a_threat_call}"))
    assert "Ended by the agent: threats or violence" in text
    assert "Incident reported — threats or violence" in text
    assert "Call received — from 07700 900123" in text
    assert "Someone joined the conference" in text
    assert leaks(text) == []


def test_no_workspace_page_shows_a_code_a_field_name_or_a_raw_timestamp(
        manager, supervisor, services, staff, a_threat_call):
    add_entry(services, customer_ref="QL-8", name="Robin Test", phone_numbers="+44 7700 900789")
    notices = Notices(services.register, services.settings)
    notices.produce_restriction("QL-8", staff["manager"].id, NOW, TODAY)
    warning = notices.produce_warning("QL-9", "Sam Sample", ["unreasonable_demands"],
                                      "Called many times a day.", staff["manager"].id, NOW, TODAY)
    services.register.lift("QL-8", "manager@example.org", "Behaviour has improved", NOW)
    pages = ["/workspace/calls", f"/workspace/calls/{a_threat_call}", "/workspace/dashboard",
             "/workspace/repeat-callers", "/workspace/register", "/workspace/register/QL-7",
             "/workspace/register/QL-8", "/workspace/queue", f"/workspace/notices/{warning}"]
    manager_only = ["/workspace/register/new", "/workspace/register/QL-7/edit",
                    "/workspace/register/QL-7/review", "/workspace/notices/warning"]
    found = {}
    for who, client, urls in (("supervisor", supervisor, pages),
                              ("manager", manager, pages + manager_only)):
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (who, url, response.status_code)
            if leaks(visible(response)):
                found[(who, url)] = leaks(visible(response))
    assert found == {}


def test_a_lifted_entry_reads_as_lifted_and_its_unsent_notice_is_withdrawn(
        manager, services, staff):
    add_entry(services)
    notices = Notices(services.register, services.settings)
    notice_id = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    lifted = post(manager, services, "/workspace/register/QL-1/lift",
                  {"reason": "Behaviour has improved"})
    assert lifted.status_code == 303

    page = manager.get("/workspace/register/QL-1")
    text = visible(page)
    assert ("Lifted on Tue 1 Dec 2026, 10am by Morgan Manager: Behaviour has improved."
            in text) or ("Lifted on Tue 1 Dec 2026, 10am by" in text
                         and ": Behaviour has improved." in text)
    assert "In force Wed 25 Nov 2026 to" not in text
    assert "Review due" not in text and "Review Mon 1 Mar 2027" not in text
    assert "Withdrawn Tue 1 Dec 2026, 10am: no longer applies" in text
    assert f"/workspace/notices/{notice_id}/sent" not in page.get_data(as_text=True)
    assert leaks(text) == []

    with services.sessions() as session:
        assert session.get(Notice, notice_id).withdrawn_at == NOW
        actions = session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
    assert actions == ["created", "lifted", "notice_withdrawn"]
    with pytest.raises(NoticeRefused):
        notices.mark_sent(notice_id, TODAY, "manager@example.org", NOW, TODAY)
    refused = post(manager, services, f"/workspace/notices/{notice_id}/sent",
                   {"sent_on": "2026-12-01"})
    assert refused.status_code == 422  # the entry's page again, saying why
    with services.sessions() as session:
        assert session.get(Notice, notice_id).sent_on is None


def test_a_lapsed_entrys_unsent_notice_is_withdrawn_once(services, staff):
    from usecases.upkeep import record_lapses

    add_entry(services, decided_on="2026-09-30", starts_on="2026-10-01", ends_on="2026-11-30",
              review_on="2026-11-15")
    notices = Notices(services.register, services.settings)
    notice_id = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    assert record_lapses(services.register, NOW, TODAY) == ["QL-1"]
    assert record_lapses(services.register, NOW, TODAY) == []
    with services.sessions() as session:
        assert session.get(Notice, notice_id).withdrawn_at == NOW
        withdrawn = session.scalars(select(AuditRecord).where(
            AuditRecord.action == "notice_withdrawn")).all()
    assert len(withdrawn) == 1
    assert [n.withdrawn_at for n in notices.for_customer("QL-1")] == [NOW]


@pytest.mark.parametrize(("kind", "detail", "title", "text"), [
    ("wrap_up", {"staff_id": 7, "reason": "aggressive_abusive", "note": "shouting"},
     "Reason for ending given: aggressive, abusive or intimidating behaviour",
     "Alex; note: shouting"),
    ("designated_contact_away", {"staff_id": 7, "leg": "designated"}, "Alex not rung",
     "the designated contact was away or signed out, so the call moved on"),
    ("fallback_contact_away", {"staff_id": 8, "leg": "fallback"}, "Jo not rung",
     "the fallback contact was away or signed out, so the call moved on"),
])
def test_wrap_up_and_skipped_contacts_read_as_sentences(kind, detail, title, text):
    from console.workspace.timeline import describe
    from store.call_queries import TimelineEvent

    step = describe(TimelineEvent(kind, NOW, detail), {7: "Alex", 8: "Jo"}, {})
    assert (step.title, step.text) == (title, text)
