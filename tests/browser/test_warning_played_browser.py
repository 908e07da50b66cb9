"""Issue 14 in a real browser: the warning really played before End call, a recorded call is
announced to the caller, and only a manager sees the recording on the call's timeline."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from callflow.recording import RECORDED_NOTICE, RecordingPolicy
from tests.browser.conftest import call_events, screenshot, sign_in_browser
from tests.browser.test_accessibility import assert_accessible
from tests.browser.test_console_browser import _agent_ready, _answer, _call_from_simulator

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings):
    """The centre records every call put through to staff."""
    return settings.with_overrides(recording=RecordingPolicy.ALL)


def test_end_call_follows_the_warning_as_played_and_the_manager_hears_the_recording(
        new_page, live_server, demo_register, staff):
    agent = _agent_ready(new_page, live_server)
    phone = _call_from_simulator(new_page, live_server)
    expect(phone.locator("#transcript")).to_contain_text(RECORDED_NOTICE)
    sid = _answer(agent)

    end = agent.get_by_role("button", name="End call")
    expect(end).to_be_disabled()
    agent.get_by_role("button", name="Give warning").click()
    # Twilio's announcement callback said the warning played: only then may the call end.
    expect(agent.locator("#call-message")).to_contain_text("Warning played to the caller")
    expect(agent.locator("#warned")).to_have_text(
        "Warned: the warning was played to the caller.")
    expect(end).to_be_enabled()
    screenshot(agent, "console-warning-played")
    assert_accessible(agent, "console warning played")

    end.click()
    expect(agent.locator("#call-message")).to_contain_text("Call ended")
    expect(phone.locator("#line-state")).to_have_text("Call ended.")
    events = call_events(live_server.services, sid,
                         wait_for=("warning_played", "ended_by_agent", "left_conference",
                                   "call_recording"))
    kinds = [e.kind for e in events]
    assert kinds.index("warning_played") < kinds.index("ended_by_agent")
    assert next(e for e in events if e.kind == "ended_by_agent").detail["warning"] == "played"
    left = {e.detail["party"]: e.detail["reason"] for e in events
            if e.kind == "left_conference"}
    assert left["caller"] == "participant_updated_via_api"

    manager = new_page()
    sign_in_browser(manager, live_server.url, "manager@example.org",
                    landing=f"/workspace/calls/{sid}")
    timeline = manager.get_by_role("main")
    expect(timeline).to_contain_text("Warning played")
    expect(timeline).to_contain_text("The caller left the conference call")
    expect(timeline).to_contain_text("Call recorded")
    expect(manager.get_by_role("link", name="recording").last).to_have_attribute(
        "href", re.compile(r"^https://api\.twilio\.com/2010-04-01/Accounts/AC\w+/Recordings/RE"))
    screenshot(manager, "call-recorded-timeline")
    assert_accessible(manager, "call timeline with a recording")

    supervisor = new_page()
    sign_in_browser(supervisor, live_server.url, "supervisor@example.org",
                    landing=f"/workspace/calls/{sid}")
    expect(supervisor.get_by_role("main")).to_contain_text("Warning played")
    expect(supervisor.get_by_role("main")).not_to_contain_text("Call recorded")
