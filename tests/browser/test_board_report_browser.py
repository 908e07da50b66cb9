"""The board's oversight report in real Chromium: axe-clean at WCAG 2.2 AA, usable by keyboard,
its charts with their figures as text, and its downloads."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser import workspace_fixtures
from tests.browser.conftest import sign_in_browser
from tests.browser.test_accessibility import assert_accessible
from tests.conftest import NOW
from tests.workspace import add_call, add_entry

pytestmark = pytest.mark.browser

workspace_server = workspace_fixtures.workspace_server
workspace_pages = workspace_fixtures.workspace_pages

PERIOD = "/workspace/board-report?from=2026-11-01&to=2026-12-01"


@pytest.fixture
def reported(services, staff) -> None:
    """A restriction with call limits, and calls warned and ended in the period."""
    entry = add_entry(services, written_only="no", call_frequency="1 a day",
                      max_call_minutes="15").entry_id
    add_call(services, NOW - timedelta(days=2), decision="within_window", entry_id=entry,
             ended_by_agent=True, events=(("time_warning", {"minutes": 15}),
                                          ("ended_by_agent", {"reason": "call_length_limit",
                                                              "by": "callflow"})))
    add_call(services, NOW - timedelta(days=3), "+447700900456", decision="centre",
             warned=True, ended_by_agent=True,
             events=(("ended_by_agent", {"reason": "aggressive_abusive"}),))
    add_call(services, NOW - timedelta(days=1), decision="over_call_limit", entry_id=entry)


def test_the_report_is_accessible_and_its_figures_are_text(workspace_server, workspace_pages,
                                                          reported):
    base = workspace_server.url
    page = workspace_pages()
    sign_in_browser(page, base, "supervisor@example.org", landing="/workspace/board-report")
    page.goto(base + PERIOD)
    expect(page.locator("#period")).to_have_text("1 November 2026 to 1 December 2026")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Oversight report")
    ended = page.locator("#table-ended")
    expect(ended.get_by_role("row", name="The agreed call length was reached (4.6) 1")
           ).to_be_visible()
    expect(page.locator("#table-contact_outcomes")).to_contain_text(
        "Over their agreed number of calls")
    assert_accessible(page, "board report")
    workspace_fixtures.screenshot(page, "board-report")

    # A chart's figures open by keyboard, for anyone who cannot read the bars.
    figures = page.locator("#chart-ended details summary")
    figures.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chart-ended details ul")).to_contain_text(
        "The agreed call length was reached (4.6): Number 1")

    with page.expect_download() as csv_download:
        page.get_by_role("link", name="as CSV (spreadsheet)").click()
    assert csv_download.value.suggested_filename == (
        "oversight-report-2026-11-01-to-2026-12-01.csv")


def test_a_period_is_chosen_and_corrected_by_keyboard(workspace_server, workspace_pages,
                                                     reported):
    base = workspace_server.url
    page = workspace_pages()
    sign_in_browser(page, base, "manager@example.org", landing="/workspace/board-report")
    page.goto(f"{base}/workspace/board-report?from=2026-12-01&to=2026-11-01")
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("The last day must be on or after the first day")
    assert_accessible(page, "board report with an error")
    summary.get_by_role("link").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#f-to")).to_be_focused()
    page.fill("#f-to", "2026-11-30")
    page.fill("#f-from", "2026-11-01")
    page.keyboard.press("Enter")  # submits the form from its field
    expect(page).to_have_url(re.compile(r"from=2026-11-01&to=2026-11-30"))
    expect(page.locator("#period")).to_have_text("1 November 2026 to 30 November 2026")
    expect(page.locator("#error-summary")).to_have_count(0)
