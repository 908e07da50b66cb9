"""Reviews and appeals in the workspace and on the command line: plain errors listed at once,
decided only by a manager not involved, overdue ones on the queue."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service import cli as service_cli
from store.db import transaction
from store.models import Appeal, RegisterEntry, Review
from tests.conftest import NOW
from tests.support.web_client import client_signed_in_as
from tests.workspace import add_entry, post, text_of
from usecases.staff import add_staff

RECEIPT = {"received_on": "2026-11-30", "channel": "email",
           "grounds": "I was upset about the repair, not abusive"}


@pytest.fixture
def other_manager(app, services, password_hash):
    """A browser signed in as a manager not involved in any restriction."""
    with transaction(services.sessions) as session:
        add_staff(session, email="noor@example.org", name="Noor", role="manager",
                  now=NOW).password_hash = password_hash
    return client_signed_in_as(app, "noor@example.org")


@pytest.fixture
def cli(services, monkeypatch):
    monkeypatch.setattr(service_cli, "services", lambda: services)
    return lambda *args: CliRunner().invoke(service_cli.register, list(args))


def test_a_supervisor_records_an_appeal_and_every_mistake_is_listed_at_once(supervisor,
                                                                            services):
    add_entry(services)
    page = supervisor.get("/workspace/register/QL-1/appeal")
    assert page.status_code == 200 and 'id="f-channel"' in page.get_data(as_text=True)
    refused = post(supervisor, services, "/workspace/register/QL-1/appeal",
                   {"received_on": "2027-01-01", "channel": "", "grounds": ""})
    assert refused.status_code == 422
    summary = text_of(refused)
    assert "Please correct 3 fields" in summary
    assert "cannot be in the future" in summary and "choose letter, email or phone" in summary
    saved = post(supervisor, services, "/workspace/register/QL-1/appeal", RECEIPT)
    assert saved.status_code == 303
    page = text_of(supervisor.get("/workspace/register/QL-1"))
    assert "I was upset about the repair, not abusive" in page
    assert "Waiting for a manager not involved" in page and "Appeal acknowledgement" in page


def test_the_deciding_manager_is_refused_and_one_not_involved_quashes(manager, other_manager,
                                                                      services):
    add_entry(services)
    post(manager, services, "/workspace/register/QL-1/appeal", RECEIPT)
    refused = manager.get("/workspace/register/QL-1/appeal/decide")
    assert refused.status_code == 200 and 'id="appeal-decision-form"' not in refused.get_data(
        as_text=True)
    assert ("manager@example.org decided this restriction; a manager who was not involved "
            "must decide the appeal") in text_of(refused)
    tried = post(manager, services, "/workspace/register/QL-1/appeal/decide",
                 {"outcome": "quashed", "reasons": "Mine"})
    assert tried.status_code == 403 and "You cannot decide this appeal" in text_of(tried)
    with services.sessions() as session:
        assert session.scalar(select(Appeal.decided_at)) is None

    missing = post(other_manager, services, "/workspace/register/QL-1/appeal/decide",
                   {"outcome": "", "reasons": ""})
    assert missing.status_code == 422 and "Please correct 2 fields" in text_of(missing)
    quashed = post(other_manager, services, "/workspace/register/QL-1/appeal/decide",
                   {"outcome": "quashed", "reasons": "The recordings show no abuse"})
    assert quashed.status_code == 303
    with services.sessions() as session:
        assert session.scalar(select(RegisterEntry.lifted_at)) == NOW
    assert "Quashed: the restriction is lifted" in text_of(
        other_manager.get("/workspace/register/QL-1"))


def test_a_varied_appeal_leads_to_the_edit_form(manager, other_manager, services):
    add_entry(services)
    post(manager, services, "/workspace/register/QL-1/appeal", RECEIPT)
    varied = post(other_manager, services, "/workspace/register/QL-1/appeal/decide",
                  {"outcome": "varied", "reasons": "Calls at set times will do"})
    assert varied.status_code == 303
    assert varied.headers["Location"].endswith("/workspace/register/QL-1/edit")


def test_only_managers_review_or_decide(supervisor, services):
    add_entry(services)
    assert supervisor.get("/workspace/register/QL-1/review").status_code == 403
    assert supervisor.get("/workspace/register/QL-1/appeal/decide").status_code == 403


def test_the_queue_lists_overdue_reviews_and_late_appeals(supervisor, services):
    add_entry(services, decided_on="2026-09-20", starts_on="2026-09-21", review_on="2026-11-26")
    post(supervisor, services, "/workspace/register/QL-1/appeal",
         {**RECEIPT, "received_on": "2026-10-01"})
    page = text_of(supervisor.get("/workspace/queue"))
    assert "Reviews overdue" in page and "QL-1 Pat Example Thu 26 Nov 2026 5 days" in page
    assert "Appeals not decided in time" in page
    assert "QL-1 Pat Example Thu 1 Oct 2026 Thu 29 Oct 2026 33 days" in page


def test_the_command_line_records_a_review_an_appeal_and_its_decision(cli, services, staff,
                                                                      password_hash):
    add_entry(services)
    with transaction(services.sessions) as session:
        add_staff(session, email="noor@example.org", name="Noor", role="manager", now=NOW)
    late = cli("review", "QL-1", "--by", "manager@example.org", "--outcome", "continue",
               "--reasons", "Still needed", "--next-review", "2027-12-01")
    assert late.exit_code == 1
    assert "--next-review: must be on or before the end date, 2027-05-31" in late.output
    missing = cli("review", "QL-1", "--by", "manager@example.org", "--outcome", "continue",
                  "--reasons", "Still needed")
    assert "--next-review: is required when the restriction continues" in missing.output
    done = cli("review", "QL-1", "--by", "manager@example.org", "--outcome", "continue",
               "--reasons", "Still needed", "--next-review", "2027-04-01")
    assert done.exit_code == 0, done.output
    assert "review recorded (continue the restriction unchanged)" in done.output

    received = cli("appeal", "QL-1", "--by", "supervisor@example.org", "--received",
                   "2026-11-30", "--channel", "phone", "--grounds", "Unfair")
    assert received.exit_code == 0, received.output
    assert "to be decided by 2026-12-28" in received.output
    involved = cli("appeal-decision", "QL-1", "--by", "manager@example.org", "--outcome",
                   "upheld", "--reasons", "Fair")
    assert involved.exit_code == 1 and "decided this restriction" in involved.output
    decided = cli("appeal-decision", "QL-1", "--by", "noor@example.org", "--outcome",
                  "upheld", "--reasons", "The arrangements are fair")
    assert decided.exit_code == 0, decided.output
    with services.sessions() as session:
        assert session.scalar(select(Review.outcome)) == "continue"
        assert session.scalar(select(Appeal.outcome)) == "upheld"
