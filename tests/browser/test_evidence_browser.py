"""Evidence, the postal address and the lift letter in real Chromium: axe-clean at WCAG 2.2 AA,
and a new restriction entered by keyboard, refused until it cites its evidence."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from store.db import transaction
from store.models import Incident
from tests.browser import workspace_fixtures
from tests.browser.conftest import sign_in_browser
from tests.browser.test_accessibility import assert_accessible
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry

pytestmark = pytest.mark.browser

workspace_server = workspace_fixtures.workspace_server
workspace_pages = workspace_fixtures.workspace_pages


def test_a_new_restriction_cites_its_evidence_then_is_lifted_with_a_letter(
        workspace_server, workspace_pages, services, staff):
    ended = add_call(services, NOW - timedelta(days=2), "+447700900123", warned=True,
                     ended_by_agent=True)
    with transaction(services.sessions) as session:
        incident = Incident(call_sid=ended, reported_by_id=staff["agent"].id,
                            reported_at=NOW - timedelta(days=2), category="threat_or_violence")
        session.add(incident)
        session.flush()
        incident_id = incident.id
    base = workspace_server.url
    page = workspace_pages()
    sign_in_browser(page, base, "manager@example.org", landing="/workspace/register/new")
    page.fill("#f-customer_ref", "QL-30")
    page.fill("#f-name", "Pat Example")
    page.fill("#f-postal_address", "Flat 2\n10 High Street\nNorthfield NF1 2AB")
    page.fill("#f-phone_numbers", "07700 900123")
    page.get_by_label("Aggressive, abusive or intimidating behaviour (3.1)").check()
    page.fill("#f-reason", "Threatened staff on the phone")
    page.get_by_label("Written contact only (policy 4.2)").check()
    page.fill("#f-ends_on", "2027-05-31")
    page.fill("#f-review_on", "2027-03-01")
    page.click("#save-entry")  # no evidence, no warning letter: both said at once
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("cite the evidence this restriction rests on")
    expect(summary).to_contain_text("no formal warning letter has been sent")
    assert_accessible(page, "entry form with evidence errors")
    summary.get_by_role("link").first.click()
    expect(page.locator("#f-evidence")).to_be_focused()
    page.keyboard.type(f"incident {incident_id}\ncall {ended}")
    page.locator("#f-no_warning_reason").focus()
    page.keyboard.type("Threats of violence to staff (policy 4.3)")
    page.click("#save-entry")

    expect(page).to_have_url(f"{base}/workspace/register/QL-30")
    expect(page.locator("#entry-evidence")).to_contain_text(f"Incident: {incident_id}")
    expect(page.locator("#entry-evidence")).to_contain_text(f"Call: {ended}")
    expect(page.locator("#entry-no-warning")).to_have_text(
        "Threats of violence to staff (policy 4.3)")
    expect(page.locator("#entry-address")).to_contain_text("10 High Street")
    expect(page.locator("#evidence-counts")).to_have_text(
        "1 call on which they were warned, 1 call ended by staff, 1 incident, "
        "no warning letters.")
    expect(page.locator("#linked-evidence")).to_contain_text(f"incident {incident_id}")
    assert_accessible(page, "entry page with evidence")

    page.fill("#f-reason", "Behaviour has improved")
    page.click("#lift-entry")
    expect(page.locator("#entry-status")).to_have_text("Lifted")
    expect(page.locator(".flash").first).to_contain_text("The letter telling them has been "
                                                         "produced")
    expect(page.locator("#notices")).to_contain_text("Restriction lifted letter")
    expect(page.locator("#notices")).to_contain_text("Withdrawn")
    assert_accessible(page, "lifted entry with its letter")
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None
    assert re.search(r"not sent", page.locator("#notices").inner_text())


def test_a_manager_lifts_without_telling_the_customer_and_the_reason_is_shown(
        workspace_server, workspace_pages, services):
    add_entry(services, postal_address="Flat 2\n10 High Street")
    base = workspace_server.url
    page = workspace_pages()
    sign_in_browser(page, base, "manager@example.org", landing="/workspace/register/QL-1")
    page.locator("#f-reason").focus()
    page.keyboard.type("Moved out of the area")
    page.locator("#f-not_told_reason").focus()
    page.keyboard.type("Police advise that a letter would put them at risk")
    page.click("#lift-entry")
    expect(page.locator("#entry-status")).to_have_text("Lifted")
    expect(page.locator(".flash").first).to_contain_text(
        "No letter was produced: they are not told in writing.")
    expect(page.locator("#entry-not-told")).to_have_text(
        "Police advise that a letter would put them at risk")
    expect(page.locator("#notices")).not_to_contain_text("Restriction lifted letter")
    expect(page.locator("#audit")).to_contain_text("Recorded why they are not told in writing")
    assert_accessible(page, "entry lifted without a letter")
