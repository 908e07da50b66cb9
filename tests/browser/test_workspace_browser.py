"""The workspace in headless Chromium: a supervisor reviews calls, a manager runs the register."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader
from sqlalchemy import select

from store.models import RegisterEntry
from tests.browser import workspace_fixtures
from tests.browser.conftest import sign_in_browser
from tests.browser.workspace_fixtures import screenshot
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry

pytestmark = pytest.mark.browser

# The fixtures live beside the console's conftest, not in it; naming them here lends them.
workspace_server = workspace_fixtures.workspace_server
workspace_pages = workspace_fixtures.workspace_pages


@pytest.fixture
def calls(services, staff):
    """A person of interest's calls among others, one of them with a full timeline."""
    entry = add_entry(services).entry_id
    alex = staff["agent"].id
    timeline = add_call(services, NOW - timedelta(minutes=5), decision="written_only",
                        entry_id=entry, events=(
                            ("received", {"from": "+447700900123", "withheld": False}),
                            ("lookup", {"source": "cache", "failed": False, "entry_id": entry}),
                            ("decision", {"outcome": "written_only",
                                          "reason": "register entry: written contact only"}),
                            ("status", {"status": "completed", "duration": 31}),
                        ))
    for n in range(1, 3):
        add_call(services, NOW - timedelta(days=n), decision="written_only", entry_id=entry)
    add_call(services, NOW - timedelta(hours=2), "+447700900456", decision="centre",
             agent_id=alex, warned=True, ended_by_agent=True)
    add_call(services, NOW - timedelta(days=3), "+447700900789", decision="closed")
    return timeline


def test_a_supervisor_filters_and_exports_the_log_reads_a_timeline_and_the_dashboard(
        workspace_server, workspace_pages, calls, tmp_path: Path):
    page = workspace_pages()
    sign_in_browser(page, workspace_server.url, "supervisor@example.org",
                    landing="/workspace/calls")
    expect(page.locator("#call-log tbody tr")).to_have_count(5)

    page.fill("#f-number", "07700 900123")
    page.select_option("#f-decision", "written_only")
    page.click("#call-filter button[type=submit]")
    expect(page.locator("#call-log tbody tr")).to_have_count(3)
    expect(page.locator("#call-log")).not_to_contain_text("07700 900456")
    screenshot(page, "call-log")

    with page.expect_download() as download:
        page.click("#export-csv")
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(rows) == 3 and {r["decision"] for r in rows} == {"written_only"}
    assert {r["customer_ref"] for r in rows} == {"QL-1"}

    page.click("#call-log tbody tr:first-child a")
    expect(page).to_have_url(re.compile(rf"/workspace/calls/{calls}$"))
    timeline = page.locator("#timeline")
    expect(timeline.locator("li")).to_have_count(4)
    expect(timeline).to_contain_text("Call received — from 07700 900123")
    expect(timeline).to_contain_text("Register checked — on the register: QL-1")
    expect(timeline).to_contain_text("Decision: Written only")
    expect(timeline.locator("li").first).to_contain_text("Tue 1 Dec 2026, 9:55:00am")
    screenshot(page, "call-timeline")

    page.click("nav.ws-nav >> text=Dashboard")
    for chart in ("#chart-decisions", "#chart-marks", "#chart-agents", "#chart-leaders"):
        svg = page.locator(f"{chart} svg")
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box["width"] > 300 and box["height"] > 30, chart
        assert page.locator(f"{chart} rect.bar").count() > 0, chart
    bar = page.locator("#chart-decisions rect.bar").first
    assert bar.bounding_box()["height"] > 0
    fill = bar.evaluate("element => getComputedStyle(element).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)"), "the stylesheet colours the bars"
    expect(page.locator("#chart-agents")).to_contain_text("Agent")
    expect(page.locator("#chart-leaders")).to_contain_text("07700 900123 (QL-1)")
    screenshot(page, "dashboard")

    page.click("nav.ws-nav >> text=Register")
    expect(page.locator("#register")).to_contain_text("QL-1")
    expect(page.locator("#new-entry")).to_have_count(0)
    page.click("#register >> text=QL-1")
    expect(page.locator("#lift-entry")).to_have_count(0)
    expect(page.locator("#edit-entry")).to_have_count(0)


def test_a_manager_creates_an_entry_fixes_a_mistake_prints_the_notice_and_lifts_it(
        workspace_server, workspace_pages, services):
    services.register.rebuild_cache(TODAY)
    page = workspace_pages()
    sign_in_browser(page, workspace_server.url, "manager@example.org",
                    landing="/workspace/register")
    page.click("#new-entry")
    page.fill("#f-customer_ref", "QL-30")
    page.fill("#f-name", "Robin Test")
    page.fill("#f-phone_numbers", "07700 900555")
    page.check("input[name=categories][value=unreasonable_persistence]")
    page.fill("#f-reason", "Calls many times a day about a repair that has been completed.")
    page.fill("#f-call_windows", "Tue,Thu 10:00-12:00")
    page.select_option("#f-designated_contact", "alex@example.org")
    page.select_option("#f-fallback", "voicemail")
    page.fill("#f-starts_on", TODAY.isoformat())
    page.fill("#f-ends_on", (TODAY - timedelta(days=1)).isoformat())
    page.click("#save-entry")

    error = page.locator("#error-ends_on")
    expect(error).to_have_text("must be after the start date (policy 5.1: say how long)")
    expect(page.locator("#f-ends_on")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-name")).to_have_value("Robin Test")
    screenshot(page, "entry-error")
    page.fill("#f-ends_on", "2027-06-30")
    page.fill("#f-review_on", "2027-03-31")
    page.fill("#f-evidence", "written: call notes of 20 to 30 November")  # policy 5.1
    page.fill("#f-no_warning_reason", "Warned in writing before callflow was in use")
    page.click("#save-entry")
    expect(page).to_have_url(f"{workspace_server.url}/workspace/register/QL-30")
    expect(page.locator(".flash").first).to_contain_text("QL-30 is on the register")
    expect(page.locator("#notice-unsent")).to_be_visible()
    assert services.routing_cache.fetch("+447700900555")[1] is not None
    screenshot(page, "entry")

    link = page.locator("#notices a", has_text="PDF").first
    response = page.context.request.get(workspace_server.url + link.get_attribute("href"))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = re.sub(r"\s+", " ", " ".join(
        p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages))
    for expected in ("Dear Robin Test", "Unreasonable persistence",
                     "Tuesday and Thursday, 10am to midday", "Your calls will be answered by Agent",
                     "until 30 June 2027", "We will review them by 31 March 2027",
                     "ask us to review it", "Housing Ombudsman"):
        assert expected in text, expected

    page.click("#notices button:has-text('Mark sent')")
    expect(page.locator("#entry-details")).to_contain_text(
        re.compile(r"Notice sent\s*Tue 1 Dec 2026"))
    expect(page.locator("#notice-unsent")).to_have_count(0)

    page.click("#lift-entry")
    expect(page.locator("#error-reason")).to_have_text("say why the entry is lifted")
    page.fill("#f-reason", "Agreed a repair plan at a meeting")
    page.click("#lift-entry")
    expect(page.locator("#entry-status")).to_have_text("Lifted")
    expect(page.locator("#lifted")).to_contain_text("Agreed a repair plan at a meeting")
    expect(page.locator("#audit tbody tr")).to_have_count(3)  # created, notice sent, lifted
    screenshot(page, "entry-lifted")
    assert services.routing_cache.fetch("+447700900555") == (True, None)
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == "QL-30"))
    assert entry.lifted_reason == "Agreed a repair plan at a meeting"
