"""Who may do what: agents never see the workspace; supervisors read; managers decide (5.2)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from store.db import transaction
from store.models import AuditRecord, Incident, Notice, Proposal
from tests.conftest import NOW
from tests.support.web_client import client_signed_in_as
from tests.workspace import add_call, add_entry, post
from tests.workspace.test_register_pages import FORM

READ_PAGES = [
    "/workspace/", "/workspace/calls", "/workspace/calls.csv", "/workspace/dashboard",
    "/workspace/repeat-callers", "/workspace/register", "/workspace/register/QL-1",
    "/workspace/queue", "/workspace/calls/{sid}", "/workspace/notices/{notice}",
    "/workspace/notices/{notice}.pdf",
]
# Every read page answers 200 except the workspace's front door, which sends you to the call log.
REDIRECTS = {"/workspace/": "/workspace/calls"}
MANAGER_PAGES = ["/workspace/register/new", "/workspace/register/QL-1/edit",
                 "/workspace/register/QL-1/review", "/workspace/notices/warning"]
CHANGES = [
    ("/workspace/register/new", FORM),
    ("/workspace/register/QL-1/edit", {**FORM, "customer_ref": "QL-1"}),
    ("/workspace/register/QL-1/lift", {"reason": "I think so"}),
    ("/workspace/register/QL-1/review", {"review_on": "2027-04-01", "note": "fine"}),
    ("/workspace/register/QL-1/notices", {}),
    ("/workspace/notices/{notice}/sent", {"sent_on": "2026-12-01"}),
    ("/workspace/notices/warning", {"customer_ref": "QL-9", "name": "N",
                                    "categories": "aggressive_abusive", "details": "d"}),
    ("/workspace/proposals/{proposal}/decline", {"note": "no"}),
    ("/workspace/incidents/{incident}/resolve", {"resolution": "done"}),
]


@pytest.fixture
def world(services, staff):
    """One of everything the workspace shows, so each page has something to refuse."""
    add_entry(services)
    sid = add_call(services, NOW)
    with transaction(services.sessions) as session:
        proposal = Proposal(customer_ref="QL-9", reason="r", proposed_by_id=staff["agent"].id,
                            proposed_at=NOW)
        incident = Incident(call_sid=sid, reported_by_id=staff["agent"].id, reported_at=NOW,
                            category="threat")
        notice = Notice(customer_ref="QL-1", kind="warning", produced_by_id=staff["manager"].id,
                        produced_at=NOW, body="Dear Pat")
        session.add_all([proposal, incident, notice])
        session.flush()
        return {"sid": sid, "proposal": proposal.id, "incident": incident.id,
                "notice": notice.id}


def assert_reached(response, url: str) -> None:
    """The page itself (200), or for a redirecting page the exact place it sends you (303)."""
    if url in REDIRECTS:
        assert (response.status_code, response.headers["Location"]) == (303, REDIRECTS[url]), url
    else:
        assert response.status_code == 200, url


def register_state(services):
    """Everything a refused change might have touched."""
    with services.sessions() as session:
        return (session.scalar(select(func.count(AuditRecord.id))),
                session.scalar(select(func.count(Notice.id))),
                session.scalar(select(Proposal.status)), session.scalar(select(Incident.status)))


@pytest.mark.parametrize("url", READ_PAGES + MANAGER_PAGES)
def test_an_agent_cannot_see_any_of_the_workspace(agent, world, url):
    assert agent.get(url.format(**world)).status_code == 403


@pytest.mark.parametrize(("url", "data"), CHANGES)
def test_neither_an_agent_nor_a_supervisor_can_change_anything(app, services, world, url, data):
    before = register_state(services)
    for email in ("alex@example.org", "supervisor@example.org"):
        client = client_signed_in_as(app, email)
        assert post(client, services, url.format(**world), data).status_code == 403, email
    assert register_state(services) == before


@pytest.mark.parametrize("url", READ_PAGES)
def test_a_supervisor_reads_every_page(supervisor, world, url):
    assert_reached(supervisor.get(url.format(**world)), url)


@pytest.mark.parametrize("url", MANAGER_PAGES)
def test_a_supervisor_is_refused_the_managers_forms(supervisor, world, url):
    assert supervisor.get(url.format(**world)).status_code == 403


def test_a_supervisor_sees_the_register_without_any_way_to_change_it(supervisor, world):
    for url in ("/workspace/register", "/workspace/register/QL-1", "/workspace/queue",
                "/workspace/notices/{notice}".format(**world)):
        html = supervisor.get(url).get_data(as_text=True)
        forms = [f for f in html.split("<form")[1:] if 'action="/signout"' not in f]
        assert all('method="get"' in f for f in forms), url
        assert "New entry" not in html and "Lift QL-1" not in html and "Mark sent" not in html
    assert "Read only" in supervisor.get("/workspace/register").get_data(as_text=True)


def test_a_manager_reaches_every_page(manager, world):
    for url in READ_PAGES + MANAGER_PAGES:
        assert_reached(manager.get(url.format(**world)), url)


def test_signed_out_visitors_are_sent_to_sign_in(app, world):
    response = app.test_client().get("/workspace/calls")
    assert response.status_code == 303
    assert response.headers["Location"] == "/signin?next=%2Fworkspace%2Fcalls"


def test_a_change_without_the_csrf_token_is_refused(manager, services, world):
    response = manager.post("/workspace/register/QL-1/lift", data={"reason": "x"})
    assert response.status_code == 400  # missing, not wrong: a wrong token is 403
    with services.sessions() as session:
        assert session.scalar(select(func.count(AuditRecord.id))) == 1
