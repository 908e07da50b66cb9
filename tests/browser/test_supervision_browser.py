"""Issue 14 items 1 and 2 in Chromium: "I need help" by keyboard, the supervisor's visible and
audible alert, listen / coach from it, the live-calls page; axe-clean and keyboard-operable."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import call_events, screenshot, sign_in_browser
from tests.browser.test_accessibility import _focus_ring, _tab_to, assert_accessible

pytestmark = pytest.mark.browser

CHRIS = "07700 900456"  # demo register: Tue/Thu 10:00-12:00, designated contact alex


def _console(new_page, server, email: str, available: bool):
    page = new_page()
    sign_in_browser(page, server.url, email)
    expect(page).to_have_url(f"{server.url}/console")
    if available:
        page.get_by_role("button", name="Available").click()
        expect(page.locator("#availability")).to_have_text("Available")
    return page


def _connected_call(new_page, server, agent) -> str:
    phone = new_page()
    phone.goto(f"{server.url}/simulator")
    phone.get_by_role("radio", name=re.compile(re.escape(CHRIS))).check()
    phone.get_by_role("button", name="Call the centre").click()
    expect(phone.locator("#line-state")).to_have_text(re.compile("On hold"))
    expect(agent.get_by_role("button", name="Answer")).to_be_visible()
    agent.get_by_role("button", name="Answer").click()
    expect(agent.locator("#call-state")).to_contain_text("Connected")
    sid = agent.locator("#call").get_attribute("data-call-sid")
    assert sid and sid.startswith("CA")
    return sid


def test_help_by_shortcut_alerts_a_supervisor_who_listens_then_coaches(
        new_page, live_server, demo_register, staff):
    supervisor = _console(new_page, live_server, "supervisor@example.org", available=False)
    # A click on the page lets the browser start audio (its autoplay rule), as a person's would.
    supervisor.locator("h2#help-requests-title").click()
    expect(supervisor.locator("#help-none")).to_be_visible()
    agent = _console(new_page, live_server, "alex@example.org", available=True)
    sid = _connected_call(new_page, live_server, agent)

    button = agent.get_by_role("button", name="I need help")
    expect(button).to_have_attribute("aria-keyshortcuts", "Alt+Shift+H")
    expect(agent.locator("#help-hint")).to_contain_text("shortcut: Alt and Shift and H")
    agent.keyboard.press("Alt+Shift+KeyH")
    expect(agent.locator("#help-message")).to_have_text(
        "Supervisors have been alerted. Stay on the line; help is coming.")
    assert_accessible(agent, "console, help asked for")

    alert = supervisor.locator("#help-alerts li")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text(
        "Agent needs help on a call with 07700 900456 (register entry QL-100002). "
        "The caller is on the person of interest register. Asked at 10am.")
    expect(supervisor.locator("#help-announcer")).to_have_text(re.compile("Agent needs help"))
    expect(supervisor.locator("#help-alerts")).to_have_attribute("data-toned", "1")
    screenshot(supervisor, "console-help-alert")
    assert_accessible(supervisor, "console, help alert")

    # By keyboard: Tab to "Listen", with a visible focus ring, and press Enter.
    supervisor.locator("#help-requests-title").focus()
    _tab_to(supervisor, "I\u2019ll help")
    _tab_to(supervisor, "Listen")
    assert _focus_ring(supervisor), "focus is visible on the alert's buttons"
    supervisor.keyboard.press("Enter")
    expect(alert.locator(".help-result")).to_have_text(
        "You are listening (muted; nobody hears you). Your phone rings: answer it to join.")
    expect(alert.get_by_role("button", name="Listen")).to_have_attribute("aria-pressed", "true")
    expect(agent.locator("#help-message")).to_have_text(
        "Supervisor answered your call for help and is on the way.")
    # The supervisor's browser phone (the simulator) rings; they answer and are on the call.
    supervisor.get_by_role("button", name="Answer").click()
    expect(supervisor.get_by_role("button", name="Hang up")).to_be_visible()

    alert.get_by_role("button", name="Coach the agent").click()
    expect(alert.locator(".help-result")).to_have_text(
        "You are coaching (only the agent hears you).")
    expect(alert.get_by_role("button", name="Coach the agent")).to_have_attribute(
        "aria-pressed", "true")
    expect(alert.get_by_role("button", name="Listen")).to_have_attribute("aria-pressed", "false")

    events = call_events(live_server.services, sid, wait_for=(
        "help_requested", "help_answered", "supervisor_joined", "supervision_changed"))
    mine = [(e.kind, e.detail.get("mode")) for e in events
            if e.kind.startswith(("help", "supervis"))]
    assert mine == [("help_requested", None), ("help_answered", None),
                    ("supervisor_joined", "listen"), ("supervision_changed", "coach")]


def test_the_live_calls_page_shows_each_call_and_joins_by_keyboard(
        new_page, live_server, demo_register, staff):
    agent = _console(new_page, live_server, "alex@example.org", available=True)
    sid = _connected_call(new_page, live_server, agent)
    agent.get_by_role("button", name="I need help").click()
    expect(agent.locator("#help-message")).to_contain_text("Supervisors have been alerted")

    page = new_page()
    sign_in_browser(page, live_server.url, "supervisor@example.org", landing="/supervision/live")
    row = page.locator(f'tr[data-call-sid="{sid}"]')
    expect(row).to_be_visible()
    expect(row.locator(".live-caller")).to_have_text("07700 900456 (register entry QL-100002)")
    expect(row.locator(".live-state")).to_have_text("Connected")
    expect(row.locator(".live-agent")).to_have_text("Agent")
    expect(row.locator(".live-flags")).to_have_text("Help requested, On the register")
    expect(row.locator(".live-supervisors")).to_have_text("None")
    screenshot(page, "live-calls")
    assert_accessible(page, "live calls")

    page.locator("h1").click()
    _tab_to(page, "Join the conversation")
    page.keyboard.press("Enter")
    expect(page.locator("#live-message")).to_have_text(
        "You are in the conversation (the caller and the agent hear you). "
        "Your phone rings: answer it to join.")
    expect(row.locator(".live-supervisors")).to_have_text(
        "Supervisor is in the conversation (the caller and the agent hear them)")
    expect(row.locator(".live-flags")).to_have_text("Help answered, On the register")
    expect(row.get_by_role("button", name="Join the conversation")).to_have_attribute(
        "aria-pressed", "true")
    assert_accessible(page, "live calls, joined")


def test_agents_are_not_shown_the_live_calls_page_or_its_link(new_page, live_server, staff):
    agent = _console(new_page, live_server, "alex@example.org", available=False)
    expect(agent.get_by_role("link", name="Live calls")).to_have_count(0)
    expect(agent.locator("#help-requests")).to_have_count(0)
    response = agent.goto(f"{live_server.url}/supervision/live")
    assert response.status == 403
