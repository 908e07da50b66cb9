"""The agent console in a real browser: a call made in the phone simulator, warned and ended."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from store.agent_pool import AgentPool
from tests.browser.conftest import call_events, screenshot, sign_in_browser
from tests.browser.test_accessibility import assert_accessible

pytestmark = pytest.mark.browser

CHRIS = "07700 900456"  # demo register: Tue/Thu 10:00-12:00, designated contact alex


def _agent_ready(new_page, server, email="alex@example.org"):
    page = new_page()
    sign_in_browser(page, server.url, email)
    expect(page).to_have_url(f"{server.url}/console")
    page.get_by_role("button", name="Available").click()
    expect(page.locator("#availability")).to_have_text("Available")
    return page


def _call_from_simulator(new_page, server, number=CHRIS):
    phone = new_page()
    phone.goto(f"{server.url}/simulator")
    phone.get_by_role("radio", name=re.compile(re.escape(number))).check()
    phone.get_by_role("button", name="Call the centre").click()
    expect(phone.locator("#line-state")).to_have_text(re.compile("On hold"))
    return phone


def _answer(agent):
    expect(agent.get_by_role("button", name="Answer")).to_be_visible()
    agent.get_by_role("button", name="Answer").click()
    expect(agent.locator("#call-state")).to_contain_text("Connected")
    return agent.locator("#call").get_attribute("data-call-sid")


def test_agent_takes_a_simulated_call_warns_and_ends_it_and_the_log_says_who_and_why(
        new_page, live_server, demo_register, staff):
    agent = _agent_ready(new_page, live_server)
    screenshot(agent, "console-available")
    phone = _call_from_simulator(new_page, live_server)
    sid = _answer(agent)
    assert sid and sid.startswith("CA")

    flag = agent.locator("#poi")
    expect(flag).to_be_visible()
    expect(flag).to_contain_text("PERSON OF INTEREST")
    expect(flag).to_contain_text("Unreasonable persistence (3.3)")
    expect(agent.locator("#call-number")).to_have_text(CHRIS)
    expect(agent.locator("#call-customer")).to_contain_text("Chris Sample")
    expect(agent.locator("#call-customer")).to_contain_text("QL-100002")
    facts = agent.locator("#poi-facts")
    expect(facts).to_contain_text("Calls only Tue,Thu 10:00-12:00")
    expect(facts).to_contain_text("Designated contact: Agent")
    expect(facts).to_contain_text("CMP-2291")
    expect(facts).to_contain_text("do not reopen unless new information")
    expect(facts).to_contain_text("Prefers to be called Chris.")
    expect(agent.locator("#availability")).to_have_text(re.compile("Busy"))
    expect(phone.locator("#line-state")).to_have_text(re.compile("Connected"))
    screenshot(agent, "console-connected")

    # End call waits for a warning.
    expect(agent.get_by_role("button", name="End call")).to_be_disabled()

    agent.get_by_role("button", name="Give warning").click()
    expect(agent.locator("#call-message")).to_contain_text("Warning played to the caller")
    expect(phone.locator("#transcript")).to_contain_text("your behaviour on this call is")
    expect(agent.get_by_role("button", name="End call")).to_be_enabled()

    # One click ends the call: the caller hears the closing statement at once.
    agent.get_by_role("button", name="End call").click()
    expect(agent.locator("#call-message")).to_contain_text("Call ended")
    expect(phone.locator("#line-state")).to_have_text("Call ended.")
    expect(phone.locator("#transcript")).to_contain_text("this call is now being ended")
    screenshot(phone, "simulator-ended")

    # Then the reason, as wrap-up: asked for, announced, and no call until it is saved.
    wrap_up = agent.get_by_role("region", name="Why did you end the call?")
    expect(wrap_up).to_be_visible()
    expect(agent.locator("#call-announcer")).to_contain_text("Say why you ended the call")
    expect(agent.locator("#availability")).to_have_text(re.compile("Wrap-up"))
    pool = AgentPool(live_server.services.redis)
    alex = staff["agent"]
    assert pool.wrap_up_owed(alex.id) == sid
    # (Abuse or threats would give time to recover first: see the recovery test below.)
    wrap_up.get_by_role("radio", name=re.compile("Unreasonable persistence")).check()
    wrap_up.get_by_label("Note (optional)").fill("Same complaint after the warning")
    screenshot(agent, "console-wrap-up")
    wrap_up.get_by_role("button", name="Save and continue").click()
    expect(wrap_up).to_be_hidden()
    expect(agent.locator("#call-message")).to_contain_text("Reason saved")
    expect(agent.locator("#availability")).to_have_text("Available")
    screenshot(agent, "console-ended")
    assert pool.wrap_up_owed(alex.id) is None

    events = call_events(live_server.services, sid,
                         wait_for=("warning", "ended_by_agent", "wrap_up"))
    by_kind = {event.kind: event for event in events}
    assert by_kind["warning"].detail["staff_id"] == alex.id
    ended = by_kind["ended_by_agent"].detail
    assert ended["staff_id"] == alex.id and ended["reason"] is None
    assert ended["closing_statement"] is True
    given = by_kind["wrap_up"].detail
    assert given["staff_id"] == alex.id and given["staff_email"] == "alex@example.org"
    assert given["reason"] == "unreasonable_persistence"
    assert given["note"] == "Same complaint after the warning"
    assert "connected" in by_kind


def _call_from_another_number(new_page, server, number="07700 900321"):
    phone = new_page()
    phone.goto(f"{server.url}/simulator")
    phone.locator("#caller-other").check()
    phone.locator("#other-number").fill(number)
    phone.get_by_role("button", name="Call the centre").click()
    expect(phone.locator("#line-state")).to_have_text(re.compile("On hold"))
    return phone


def test_a_threat_gives_time_to_recover_and_warns_whoever_takes_the_next_call(
        new_page, live_server, staff):
    alex = _agent_ready(new_page, live_server)
    _call_from_another_number(new_page, live_server)
    sid = _answer(alex)
    alex.get_by_role("button", name="Threat or violence: end now").click()
    expect(alex.locator("#call-message")).to_contain_text("Call ended")

    # Alex recovers: a countdown they can see, announced politely, and no call meanwhile.
    recovery = alex.get_by_role("region", name="Time to recover")
    expect(recovery).to_be_visible()
    expect(alex.locator("#availability")).to_have_text(re.compile("Recovering"))
    expect(alex.locator("#recovery-countdown")).to_have_text(re.compile(r"^[45] minutes? .*left$"))
    expect(alex.locator("#recovery-until")).to_have_text("10:05am")
    expect(alex.locator("#recovery-announcer")).to_have_attribute("aria-live", "polite")
    expect(alex.locator("#recovery-announcer")).to_contain_text(
        "You can take calls again at 10:05am")
    expect(recovery.get_by_role("button", name="Take calls again now")).to_be_hidden()
    refused = alex.get_by_role("button", name="Available")
    refused.click()
    expect(alex.locator("#availability-message")).to_contain_text(
        "you are taking time to recover after an abusive call")
    screenshot(alex, "console-recovering")
    assert_accessible(alex, "console recovering")
    call_events(live_server.services, sid, wait_for=("ended_by_agent",))

    # A supervisor's console shows who is recovering.
    supervisor = new_page()
    sign_in_browser(supervisor, live_server.url, "supervisor@example.org")
    expect(supervisor.locator("#recovering-list")).to_contain_text("Agent: back at 10:05am")

    # The same number rings again: Jo takes it, and is told how its last call ended.
    jo = _agent_ready(new_page, live_server, "jo@example.org")
    _call_from_another_number(new_page, live_server)
    _answer(jo)
    warning = jo.locator("#abuse-warning")
    expect(warning).to_be_visible()
    expect(warning).to_have_text("This number\u2019s last call was ended for threats or violence "
                                 "on Tue 1 Dec 2026, 10am.")
    expect(jo.locator("#call-customer")).to_have_text("Not on the register")
    assert AgentPool(live_server.services.redis).current_call(staff["agent"].id) is None
    screenshot(jo, "console-abuse-warning")
    assert_accessible(jo, "console abuse warning")


def test_an_agent_cannot_end_another_agents_call(new_page, live_server, demo_register, staff):
    alex = _agent_ready(new_page, live_server)
    _call_from_simulator(new_page, live_server)
    sid = _answer(alex)

    jo = new_page()
    sign_in_browser(jo, live_server.url, "jo@example.org")
    jo.goto(f"{live_server.url}/console?call={sid}")
    expect(jo.locator("#call-message")).to_contain_text("Not allowed")
    say = jo.locator("#call-message")
    say.evaluate("element => { element.textContent = ''; }")
    jo.get_by_role("button", name="Threat or violence: end now").click()
    expect(say).to_contain_text("Not allowed: you are not on this call")
    screenshot(jo, "console-403")

    expect(alex.locator("#call-state")).to_contain_text("Connected")
    kinds = {event.kind for event in call_events(live_server.services, sid, timeout=1)}
    assert "ended_by_agent" not in kinds


def test_a_signed_out_session_cannot_act(new_page, live_server, demo_register, staff):
    agent = _agent_ready(new_page, live_server)
    _call_from_simulator(new_page, live_server)
    sid = _answer(agent)

    # Sign out in another tab of the same browser: the session ends on the server.
    other_tab = agent.context.new_page()
    other_tab.goto(f"{live_server.url}/console")
    other_tab.get_by_role("button", name="Sign out").click()
    expect(other_tab).to_have_url(re.compile("/signin"))

    # What the console's Give warning button sends, with the old CSRF token: refused.
    answer = agent.evaluate(
        """async (sid) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const response = await fetch(`/api/calls/${sid}/warning`, {method: "POST",
                headers: {"X-CSRF-Token": token, "Content-Type": "application/json"}, body: "{}"});
            return {status: response.status, body: await response.json()};
        }""",
        sid,
    )
    assert answer["status"] == 401
    expect(agent.locator("#signed-out")).to_be_visible()
    expect(agent.get_by_role("button", name="Give warning")).to_be_disabled()
    screenshot(agent, "console-signed-out")
    kinds = {event.kind for event in call_events(live_server.services, sid, timeout=1)}
    assert "warning" not in kinds


def test_the_console_needs_a_signed_in_agent(new_page, live_server, staff):
    page = new_page()
    page.goto(f"{live_server.url}/console")
    expect(page).to_have_url(re.compile(r"/signin\?next=(/|%2F)console$"))
    assert AgentPool(live_server.services.redis).current_call(staff["agent"].id) is None
