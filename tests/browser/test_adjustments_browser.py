"""The triage queue and the entry form's needs and representatives in real Chromium: axe-core
clean at WCAG 2.2 AA, and usable by keyboard alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from callflow import events
from store.call_events import Batch
from store.call_log import CallLog
from store.db import transaction
from tests.browser import workspace_fixtures
from tests.browser.conftest import sign_in_browser
from tests.browser.test_accessibility import assert_accessible
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry

pytestmark = pytest.mark.browser

workspace_server = workspace_fixtures.workspace_server
workspace_pages = workspace_fixtures.workspace_pages

SID = "CA" + "9" * 32


def voicemail_from_the_register(services) -> None:
    saved = add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
                      adjustments="large_print; interpreter: Polish",
                      representatives="Jo Bloggs | advocate | 07700 900456 | not covered")
    with transaction(services.sessions) as session:
        CallLog(session).record([Batch.of(
            SID, events.looked_up(NOW, "cache", False, saved.entry_id),
            events.voicemail(NOW, "RE1", "https://api.twilio.com/rec/RE1", "12"))])


def test_a_supervisor_triages_a_voicemail_by_keyboard_on_pages_axe_finds_clean(
        workspace_server, workspace_pages, services):
    voicemail_from_the_register(services)
    services.register.rebuild_cache(TODAY)
    base = workspace_server.url
    page = workspace_pages()
    sign_in_browser(page, base, "supervisor@example.org", landing="/workspace/triage")
    expect(page.locator("#triage-waiting")).to_contain_text("QL-1")
    assert_accessible(page, "triage queue")

    # From the navigation's link to the item's form, by keyboard alone.
    page.get_by_role("link", name=re.compile("^Record the outcome for QL-1")).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/workspace/triage/\d+$"))
    page.locator("#f-outcome").focus()
    page.keyboard.press("Enter")  # submits with nothing chosen: the errors, linked
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("choose what the message was")
    assert_accessible(page, "triage item with errors")
    summary.get_by_role("link").first.click()
    expect(page.locator("#f-outcome")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the radio group: the second choice, a new issue
    expect(page.locator("input[name=outcome][value=new_issue]")).to_be_checked()
    page.locator("#f-notes").focus()
    page.keyboard.type("Logged as repair 55 for the housing officer.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Record the outcome")).to_be_focused()
    page.keyboard.press("Enter")
    # (the browser keeps the #f-outcome the error summary's link added)
    expect(page).to_have_url(re.compile(re.escape(f"{base}/workspace/triage") + "(#|$)"))
    expect(page.locator("#triage-waiting")).to_contain_text("Nothing is waiting.")
    expect(page.locator("#triage-handled")).to_contain_text(
        "A new, unrelated issue: Logged as repair 55 for the housing officer.")
    assert_accessible(page, "triage queue after an outcome")


def test_the_entry_page_and_form_show_needs_and_representatives_accessibly(
        workspace_server, workspace_pages, services):
    voicemail_from_the_register(services)
    base = workspace_server.url
    page = workspace_pages()
    sign_in_browser(page, base, "manager@example.org", landing="/workspace/register/QL-1")
    expect(page.locator("#entry-needs")).to_have_text("Large print; Interpreter: Polish")
    expect(page.locator("#entry-representatives")).to_contain_text(
        "Jo Bloggs (advocate), 07700 900456: not covered by the restriction")
    assert_accessible(page, "entry with needs")
    page.goto(f"{base}/workspace/register/QL-1/edit")
    expect(page.get_by_label("Large print")).to_be_checked()
    page.get_by_label("Help with writing").focus()
    page.keyboard.press("Space")
    page.get_by_label("Written contact only (policy 4.2)").check()
    page.fill("#f-call_windows", "")
    page.click("#save-entry")
    expect(page.locator("#error-summary")).to_contain_text("so writing may be a barrier")
    assert_accessible(page, "entry form with a needs error")


def test_the_console_shows_the_needs_and_whose_representative_is_calling(
        new_page, live_server, services, staff):
    from tests.console.test_api import on_call

    saved = add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
                      adjustments="large_print; interpreter: Polish",
                      representatives="Jo Bloggs | advocate | 07700 900456 | not covered")
    page = new_page()
    sign_in_browser(page, live_server.url, "alex@example.org")
    on_call(services, staff["agent"], entry_id=str(saved.entry_id), **{"from": "+447700900456"})
    expect(page.locator("#poi-representative")).to_have_text(
        "Jo Bloggs (advocate), representative of Pat Example. The restriction does not cover "
        "them: deal with their call as normal.")
    expect(page.locator("#poi-needs")).to_have_text("Large printInterpreter: Polish")
    expect(page.locator("#poi-needs-label")).to_be_visible()
    assert_accessible(page, "console with a representative's call")
