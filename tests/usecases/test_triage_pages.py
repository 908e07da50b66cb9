"""The triage queue and the entry form's needs and representatives, through the real app: a
supervisor records an outcome, an agent is refused, a manager records needs, audited."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from callflow import events
from store.call_events import Batch
from store.call_log import CallLog
from store.db import transaction
from store.models import AuditRecord, TriageItem
from tests.conftest import NOW
from tests.support.web_client import client_signed_in_as
from tests.workspace import add_entry, entry_form, post, text_of

SID = "CA" + "8" * 32
FORM = {**entry_form(), "written_only": "yes", "categories": ["aggressive_abusive"],
        "phone_numbers": "07700 900123", "evidence": "written: letter of 3 November"}


@pytest.fixture
def manager(app):
    return client_signed_in_as(app, "manager@example.org")


@pytest.fixture
def supervisor(app):
    return client_signed_in_as(app, "supervisor@example.org")


@pytest.fixture
def agent(app):
    return client_signed_in_as(app, "alex@example.org")


def voicemail_item(services) -> int:
    saved = add_entry(services)
    with transaction(services.sessions) as session:
        CallLog(session).record([Batch.of(
            SID, events.looked_up(NOW, "cache", False, saved.entry_id),
            events.voicemail(NOW, "RE1", "https://api.twilio.com/rec/RE1", "12"))])
    with services.sessions() as session:
        return session.scalar(select(TriageItem.id))


def test_a_supervisor_records_an_outcome_and_every_problem_is_shown_at_once(
        supervisor, services):
    item_id = voicemail_item(services)
    page = text_of(supervisor.get("/workspace/triage"))
    assert ("Waiting for an outcome Customer What Came in Due by Action QL-1 Voicemail ( the "
            "call and its recording ) Tue 1 Dec 2026, 10am Sun 6 Dec 2026 Record the outcome"
            in page)
    assert "Voicemails and messages" in page  # in the navigation
    refused = post(supervisor, services, f"/workspace/triage/{item_id}",
                   {"outcome": "new_issue", "notes": ""})
    assert refused.status_code == 422
    html = unescape(refused.get_data(as_text=True))
    assert 'id="error-notes">say what was done about it (a new, unrelated issue)' in html
    done = post(supervisor, services, f"/workspace/triage/{item_id}",
                {"outcome": "new_issue", "notes": "Logged repair 55"})
    assert (done.status_code, done.headers["Location"]) == (303, "/workspace/triage")
    page = text_of(supervisor.get("/workspace/triage"))
    assert "Nothing is waiting." in page
    assert "A new, unrelated issue: Logged repair 55" in page
    with services.sessions() as session:
        assert session.scalar(select(AuditRecord.actor).where(
            AuditRecord.action == "triaged")) == "supervisor@example.org"


def test_an_agent_may_not_see_or_record_triage(agent, services):
    item_id = voicemail_item(services)
    assert agent.get("/workspace/triage").status_code == 403
    assert post(agent, services, f"/workspace/triage/{item_id}",
                {"outcome": "same_closed_issue"}).status_code == 403


def test_a_message_with_mistakes_is_refused_with_every_problem(supervisor, services):
    add_entry(services)
    response = post(supervisor, services, "/workspace/triage/messages",
                    {"customer_ref": "QL-404", "summary": "", "received_on": "31/02/2026"})
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert "'31/02/2026' is not a date (use 2026-12-01 or 01/12/2026)" in html
    assert "QL-404 is not on the register" in html
    assert "say briefly what the message is about" in html
    ok = post(supervisor, services, "/workspace/triage/messages",
              {"customer_ref": "QL-1", "summary": "Letter about the boiler",
               "received_on": (NOW - timedelta(days=1)).date().isoformat()})
    assert ok.status_code == 303
    assert "Message: Letter about the boiler" in text_of(supervisor.get("/workspace/triage"))


def test_a_manager_records_needs_and_representatives_on_the_entry_form(manager, services):
    refused = post(manager, services, "/workspace/register/new",
                   {**FORM, "need": ["help_with_writing", "interpreter"], "need_interpreter": "",
                    "representatives": "Jo Bloggs | advocate | 07700 900456 | maybe"})
    assert refused.status_code == 422
    html = unescape(refused.get_data(as_text=True))
    assert 'id="error-adjustments">Interpreter: say which language' in html
    assert "id=\"error-representatives\">representative 1 (Jo Bloggs): 'maybe'" in html
    saved = post(manager, services, "/workspace/register/new",
                 {**FORM, "need": ["large_print", "interpreter"], "need_interpreter": "Polish",
                  "representatives": "Jo Bloggs | advocate | 07700 900456 | covered"})
    assert saved.status_code == 303, unescape(saved.get_data(as_text=True))
    page = text_of(manager.get("/workspace/register/QL-1"))
    assert "Needs Large print; Interpreter: Polish" in page
    assert ("Representatives Jo Bloggs (advocate), 07700 900456: covered by the restriction"
            in page)
    form = unescape(manager.get("/workspace/register/QL-1/edit").get_data(as_text=True))
    assert 'name="need_interpreter" type="text" value="Polish"' in form
    assert "Jo Bloggs | advocate | +447700900456 | covered</textarea>" in form


def test_the_dashboard_counts_items_overdue_for_triage(app, supervisor, services, clock):
    voicemail_item(services)
    assert ("0 voicemails or messages overdue for triage"
            in text_of(supervisor.get("/workspace/dashboard")))
    clock.set(NOW + timedelta(days=6))
    later = client_signed_in_as(app, "supervisor@example.org")
    assert ("1 voicemail or message overdue for triage"
            in text_of(later.get("/workspace/dashboard")))


def test_the_screen_pop_says_whose_representative_is_calling_and_shows_the_needs(
        client, services, staff):
    from tests.console.test_api import bearer, on_call

    saved = add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
                      adjustments="british_sign_language",
                      representatives="Jo Bloggs | advocate | 07700 900456 | not covered")
    on_call(services, staff["agent"], entry_id=str(saved.entry_id), **{"from": "+447700900456"})
    call = client.get("/api/calls/current", headers=bearer(services, staff["agent"])).json["call"]
    flag = call["person_of_interest"]
    assert flag["needs"] == ["British Sign Language"]
    assert flag["representative"] == {"of": "representative of Pat Example",
                                      "name": "Jo Bloggs", "relationship": "advocate",
                                      "covered": False}
