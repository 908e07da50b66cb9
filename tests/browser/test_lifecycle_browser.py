"""A restriction's review and appeal in real Chromium, by keyboard where a person would."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from store.db import transaction
from tests.browser import workspace_fixtures
from tests.browser.conftest import sign_in_browser
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry
from usecases.staff import add_staff

pytestmark = pytest.mark.browser

workspace_server = workspace_fixtures.workspace_server
workspace_pages = workspace_fixtures.workspace_pages


def test_a_review_then_an_appeal_decided_by_a_manager_not_involved(
        workspace_server, workspace_pages, services, password_hash):
    add_entry(services, notice_sent_on="2026-11-25")
    with transaction(services.sessions) as session:
        add_staff(session, email="noor@example.org", name="Noor", role="manager",
                  now=NOW).password_hash = password_hash
    services.register.rebuild_cache(TODAY)
    base = workspace_server.url

    manager = workspace_pages()
    sign_in_browser(manager, base, "manager@example.org", landing="/workspace/register/QL-1")
    manager.click("#review-entry")
    manager.click("#review-form button[type=submit]")  # nothing chosen: every error at once
    summary = manager.locator("#error-summary")
    expect(summary).to_contain_text("choose what the review decided")
    expect(summary).to_contain_text("say why you decided this")
    summary.get_by_role("link").first.click()
    expect(manager.locator("#f-outcome")).to_be_focused()
    manager.keyboard.press("Space")  # the first choice: continue
    expect(manager.locator("#f-outcome")).to_be_checked()
    manager.locator("#f-reasons").focus()
    manager.keyboard.type("Fewer calls, but letters are still abusive.")
    manager.fill("#f-review_on", "2027-04-01")
    manager.keyboard.press("Enter")
    # (the browser keeps the #f-outcome the error summary's link added)
    expect(manager).to_have_url(re.compile(re.escape(f"{base}/workspace/register/QL-1") + "(#|$)"))
    expect(manager.locator(".flash").first).to_contain_text("no new restriction notice")
    expect(manager.locator("#reviews")).to_contain_text("Fewer calls, but letters are still")
    expect(manager.locator("#notice-unsent")).to_have_count(0)

    manager.click("#record-appeal")
    manager.get_by_label("Email").check()
    manager.fill("#f-grounds", "I only called about my boiler.")
    manager.click("#appeal-form button[type=submit]")
    expect(manager.locator("#appeals")).to_contain_text("Waiting for a manager not involved")
    manager.click("#decide-appeal")
    expect(manager.locator("#not-independent")).to_contain_text(
        "manager@example.org decided this restriction")
    expect(manager.locator("#appeal-decision-form")).to_have_count(0)

    other = workspace_pages()
    sign_in_browser(other, base, "noor@example.org",
                    landing="/workspace/register/QL-1/appeal/decide")
    other.get_by_label("Quashed: the restriction is lifted").check()
    other.fill("#f-reasons", "The calls were about a real repair.")
    other.click("#appeal-decision-form button[type=submit]")
    expect(other).to_have_url(f"{base}/workspace/register/QL-1")
    expect(other.locator("#entry-status")).to_have_text("Lifted")
    expect(other.locator("#notices")).to_contain_text("Appeal outcome letter")
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None
