"""Every page passes axe-core at WCAG 2.2 AA, and the console works by keyboard alone.

axe-core is installed pinned from npm into .tools/axe (never a CDN), injected into real
Chromium and run with WCAG 2.0/2.1/2.2 A and AA rules. Each page is opened as the role that
uses it, in the state a person sees (a call showing, a form answered with errors).
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
from playwright.sync_api import expect

from store.db import transaction
from store.models import Incident, Proposal
from tests.browser import workspace_fixtures
from tests.browser.conftest import sign_in_browser
from tests.conftest import NOW, TEST_PASSWORD, TODAY
from tests.workspace import add_call, add_entry
from usecases.appeals import record_appeal
from usecases.notices import Notices
from usecases.staff import add_staff

pytestmark = pytest.mark.browser

workspace_server = workspace_fixtures.workspace_server
workspace_pages = workspace_fixtures.workspace_pages

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AXE_PACKAGE = "axe-core"
AXE_VERSION = "4.11.4"
AXE_PREFIX = PROJECT_ROOT / ".tools" / "axe"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
CHRIS = "07700 900456"  # demo register: Tue/Thu 10:00-12:00, designated contact alex


# -- axe-core ----------------------------------------------------------------------------------


def _installed_axe(prefix: Path) -> str | None:
    """The axe-core version installed under `prefix`, if any."""
    try:
        manifest = prefix / "node_modules" / AXE_PACKAGE / "package.json"
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@cache
def axe_source(prefix: Path = AXE_PREFIX) -> str:
    """axe.min.js of the pinned axe-core, installed with npm under `prefix` if needed."""
    script = prefix / "node_modules" / AXE_PACKAGE / "axe.min.js"
    if _installed_axe(prefix) != AXE_VERSION or not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(f"npm not found: install Node.js with npm so the tests can install "
                        f"{AXE_PACKAGE}@{AXE_VERSION} into {prefix}")
        prefix.mkdir(parents=True, exist_ok=True)
        # Parallel test sessions share the folder; only one of them runs npm.
        with open(prefix / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _installed_axe(prefix) != AXE_VERSION or not script.exists():
                result = subprocess.run(
                    [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                     f"{AXE_PACKAGE}@{AXE_VERSION}"],
                    capture_output=True, text=True, timeout=600, check=False)
                if result.returncode != 0:
                    pytest.fail(f"`npm install {AXE_PACKAGE}@{AXE_VERSION}` failed "
                                f"({result.returncode}):\n{result.stderr[-2000:]}")
    return script.read_text()


def axe_violations(page) -> list[dict]:
    """Run axe-core on the page at WCAG 2.2 AA; its violations, one per rule."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # The app's CSP (script-src 'self') refuses an inline <script> tag, rightly; evaluating
        # the file through the DevTools protocol is not subject to it.
        page.evaluate(f"{axe_source()}\n;undefined")
    return page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')),
                summaries: v.nodes.map(n => n.failureSummary)}));
        }""",
        WCAG_TAGS,
    )


def describe(violations: list[dict]) -> str:
    """Each violation's rule, impact and the elements it names, for the failure message."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for target, summary in zip(v["targets"], v["summaries"], strict=True):
            lines.append(f"    {target}: {' '.join(summary.split())[:300]}")
    return "\n".join(lines)


def assert_accessible(page, name: str) -> None:
    """Exactly 0 WCAG 2.2 AA violations on the page as it is now."""
    violations = axe_violations(page)
    count = sum(len(v["targets"]) for v in violations)
    print(f"axe {name}: {count} violations")
    assert violations == [], f"{name}: {count} axe violations\n{describe(violations)}"


# -- the workspace -----------------------------------------------------------------------------


@pytest.fixture
def workspace_data(services, staff) -> dict[str, str]:
    """A register entry, calls (one with a timeline), a notice, a proposal and an incident."""
    entry = add_entry(services).entry_id
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
    ended = add_call(services, NOW - timedelta(hours=2), "+447700900456", decision="centre",
                     agent_id=staff["agent"].id, warned=True, ended_by_agent=True)
    add_call(services, NOW - timedelta(days=3), "+447700900789", decision="closed")
    notice = Notices(services.register, services.settings).produce_warning(
        "QL-9", "Sam Example", ["aggressive_abusive"], "Shouted at staff on two calls.",
        staff["manager"].id, NOW, TODAY)
    with transaction(services.sessions) as session:
        session.add(Proposal(call_sid=ended, phone_number="+447700900456",
                             categories=["aggressive_abusive"], reason="Swore after a warning",
                             proposed_by_id=staff["agent"].id, proposed_at=NOW))
        session.add(Incident(call_sid=ended, reported_by_id=staff["agent"].id, reported_at=NOW,
                             category="threat_or_violence", notes="Threatened to visit"))
    # An appeal on QL-1 (decided by the manager, who may not decide it) and on QL-2 (decided
    # by another manager, so the manager may).
    with transaction(services.sessions) as session:
        add_staff(session, email="noor@example.org", name="Noor", role="manager", now=NOW)
    add_entry(services, customer_ref="QL-2", phone_numbers="07700 900999",
              decided_by="noor@example.org")
    for ref in ("QL-1", "QL-2"):
        record_appeal(services.register, services.settings, ref, "supervisor@example.org",
                      {"received_on": "2026-11-30", "channel": "letter",
                       "grounds": "The restriction is unfair"}, NOW, TODAY)
    services.register.rebuild_cache(TODAY)
    return {"call": timeline, "notice": str(notice)}


def _submit(selector: str) -> Callable:
    """A step that submits the page's form as it is (so it comes back with errors)."""
    def step(page) -> None:
        with page.expect_navigation():
            page.click(selector)
    return step


WORKSPACE_PAGES = [
    ("call log", "supervisor", "/workspace/calls", None),
    ("call timeline", "supervisor", "/workspace/calls/{call}", None),
    ("dashboard", "supervisor", "/workspace/dashboard", None),
    ("repeated contact", "supervisor", "/workspace/repeat-callers", None),
    ("register list", "supervisor", "/workspace/register", None),
    ("register list", "manager", "/workspace/register", None),
    ("entry", "manager", "/workspace/register/QL-1", None),
    ("entry, lift refused", "manager", "/workspace/register/QL-1", _submit("#lift-entry")),
    ("entry form", "manager", "/workspace/register/new", None),
    ("entry form with errors", "manager", "/workspace/register/new", _submit("#save-entry")),
    ("entry edit form", "manager", "/workspace/register/QL-1/edit", None),
    ("review form", "manager", "/workspace/register/QL-1/review", None),
    ("review form with errors", "manager", "/workspace/register/QL-1/review",
     _submit("#review-form button[type=submit]")),
    ("appeal form", "supervisor", "/workspace/register/QL-1/appeal", None),
    ("appeal form with errors", "supervisor", "/workspace/register/QL-1/appeal",
     _submit("#appeal-form button[type=submit]")),
    ("appeal decision form", "manager", "/workspace/register/QL-2/appeal/decide", None),
    ("appeal decision form with errors", "manager", "/workspace/register/QL-2/appeal/decide",
     _submit("#appeal-decision-form button[type=submit]")),
    ("appeal decision refused", "manager", "/workspace/register/QL-1/appeal/decide", None),
    ("warning letter form", "manager", "/workspace/notices/warning", None),
    ("warning letter form with errors", "manager", "/workspace/notices/warning",
     _submit("main form button[type=submit]")),
    ("notice", "manager", "/workspace/notices/{notice}", None),
    ("queue", "manager", "/workspace/queue", None),
    ("events not logged", "supervisor", "/workspace/dead-letters", None),
]


@pytest.mark.parametrize(("name", "role", "path", "step"), WORKSPACE_PAGES,
                         ids=[f"{role}-{name}".replace(" ", "-").replace(",", "")
                              for name, role, _, _ in WORKSPACE_PAGES])
def test_every_workspace_page_has_no_wcag_22_aa_violations(
        workspace_server, workspace_pages, workspace_data, name, role, path, step):
    page = workspace_pages()
    landing = path.format(**workspace_data)
    page.goto(f"{workspace_server.url}/signin?next={landing}")
    page.fill("#email", f"{role}@example.org")
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{workspace_server.url}{landing}")
    if step is not None:
        step(page)
        expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    assert_accessible(page, f"{name} ({role})")
    assert_errors_linked(page)
    assert_charts_have_figures(page)


def assert_errors_linked(page) -> None:
    """Each field's error is named by its field's aria-describedby; the summary's links land."""
    unlinked = page.evaluate("""() => [...document.querySelectorAll('.field-error')]
        .filter(e => !document.querySelector(`[aria-describedby~="${e.id}"]`)).map(e => e.id)""")
    assert unlinked == [], "errors no field is described by"
    broken = page.evaluate("""() => [...document.querySelectorAll('#error-summary a')]
        .map(a => a.getAttribute('href')).filter(h => !document.querySelector(h))""")
    assert broken == [], "error summary links to nothing"


def assert_charts_have_figures(page) -> None:
    """Each chart's bars are also given as text (a screen reader cannot read the bars)."""
    for chart in page.locator("figure.chart").all():
        bars = chart.locator("rect.bar").count()
        assert chart.locator(".chart-data li").count() == bars, chart.get_attribute("id")


# -- sign-in, the console and the simulator ----------------------------------------------------


def test_the_sign_in_page_and_its_error_have_no_violations(new_page, live_server, staff):
    page = new_page()
    page.goto(f"{live_server.url}/signin")
    assert_accessible(page, "sign-in")
    page.locator("header .brand").focus()  # the email field has autofocus
    page.keyboard.press("Shift+Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert _focus_ring(page), "the skip link shows focus"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.fill("#email", "alex@example.org")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("#signin-error")).to_be_visible()
    assert_accessible(page, "sign-in with an error")


def test_the_simulator_has_no_violations(new_page, live_server, demo_register):
    page = new_page()
    page.goto(f"{live_server.url}/simulator")
    assert_accessible(page, "simulator")


def _call_from_simulator(new_page, server):
    phone = new_page()
    phone.goto(f"{server.url}/simulator")
    phone.get_by_role("radio", name=re.compile(re.escape(CHRIS))).check()
    phone.get_by_role("button", name="Call the centre").click()
    expect(phone.locator("#line-state")).to_have_text(re.compile("On hold"))
    return phone


def test_the_console_idle_ringing_and_on_a_call_has_no_violations(
        new_page, live_server, demo_register, staff):
    agent = new_page()
    sign_in_browser(agent, live_server.url, "alex@example.org")
    expect(agent).to_have_url(f"{live_server.url}/console")
    assert_accessible(agent, "console, idle")
    agent.get_by_role("button", name="Available").click()
    expect(agent.locator("#availability")).to_have_text("Available")

    phone = _call_from_simulator(new_page, live_server)
    expect(agent.get_by_role("button", name="Answer")).to_be_visible()
    assert_accessible(agent, "console, ringing")
    agent.get_by_role("button", name="Answer").click()
    expect(agent.locator("#call-state")).to_contain_text("Connected")
    expect(agent.locator("#poi")).to_be_visible()
    assert_accessible(agent, "console, on a call")
    assert_accessible(phone, "simulator, on a call")

    agent.get_by_role("button", name="Give warning").click()
    agent.get_by_role("button", name="End call").click()
    wrap_up = agent.get_by_role("region", name="Why did you end the call?")
    expect(wrap_up).to_be_visible()
    assert_accessible(agent, "console, wrap-up after one-click end")
    wrap_up.get_by_role("button", name="Save and continue").click()
    expect(wrap_up.locator("#wrap-up-error")).to_be_visible()
    assert_accessible(agent, "console, wrap-up without a reason")


def test_the_supervisors_console_has_no_violations(new_page, live_server, staff):
    page = new_page()
    sign_in_browser(page, live_server.url, "supervisor@example.org")
    page.goto(f"{live_server.url}/console")
    expect(page.locator("#call-empty")).to_be_visible()
    assert_accessible(page, "console, supervisor")


# -- keyboard alone ----------------------------------------------------------------------------


def _tab_to(page, name: str, limit: int = 60) -> None:
    """Press Tab until the focused element's accessible text is `name`; fail if it never is."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate("() => (document.activeElement.innerText || '').trim()")
        if focused == name:
            return
    pytest.fail(f"Tab never reached {name!r}")


def _focus_ring(page) -> str:
    """The focused element's outline or box-shadow (what shows where focus is)."""
    return page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        if (!document.activeElement.matches(':focus-visible')) return '';
        if (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
            return `outline ${style.outlineWidth} ${style.outlineStyle} ${style.outlineColor}`;
        return style.boxShadow === 'none' ? '' : `box-shadow ${style.boxShadow}`;
    }""")


def test_the_console_is_operable_by_keyboard_with_visible_focus_and_announced(
        new_page, live_server, demo_register, staff):
    agent = new_page()
    sign_in_browser(agent, live_server.url, "alex@example.org")
    expect(agent).to_have_url(f"{live_server.url}/console")

    # The skip link is the first stop and lands on the main content.
    agent.keyboard.press("Tab")
    assert agent.evaluate("() => document.activeElement.getAttribute('href')") == "#main"
    assert _focus_ring(agent), "the skip link shows focus"

    _tab_to(agent, "Available")
    assert _focus_ring(agent), "the Available button shows focus"
    agent.keyboard.press("Enter")
    expect(agent.locator("#availability")).to_have_text("Available")
    assert agent.locator("#availability").get_attribute("role") == "status"

    live = agent.locator("#call-announcer")
    expect(live).to_have_attribute("aria-live", "assertive")
    _call_from_simulator(new_page, live_server)
    expect(live).to_have_text(re.compile(r"^Incoming call"))

    _tab_to(agent, "Answer")
    assert _focus_ring(agent)
    agent.keyboard.press("Space")
    expect(agent.locator("#call-state")).to_contain_text("Connected")

    _tab_to(agent, "Give warning")
    assert _focus_ring(agent)
    agent.keyboard.press("Enter")
    message = agent.locator("#call-message")
    expect(message).to_contain_text("Warning played to the caller")
    assert message.get_attribute("role") == "alert"

    agent.locator("#warn").focus()
    _tab_to(agent, "End call")
    assert _focus_ring(agent)
    agent.keyboard.press("Enter")
    expect(message).to_contain_text("Call ended")
    wrap_up = agent.get_by_role("region", name="Why did you end the call?")
    expect(wrap_up).to_be_visible()
    expect(live).to_contain_text("Say why you ended the call")
    # One key press ended the call; focus moves to the wrap-up's reasons, chosen with the
    # arrow keys, then saved.
    assert agent.evaluate("() => document.activeElement.name") == "reason"
    agent.keyboard.press("Space")
    assert _focus_ring(agent), "the reason radio shows focus"
    for _ in range(10):
        checked = agent.evaluate("() => document.activeElement.value")
        if checked == "aggressive_abusive":
            break
        agent.keyboard.press("ArrowDown")
    assert agent.evaluate("() => document.activeElement.checked") is True
    _tab_to(agent, "Save and continue")
    assert _focus_ring(agent)
    agent.keyboard.press("Enter")
    expect(wrap_up).to_be_hidden()
    expect(message).to_contain_text("Reason saved")


def test_pages_have_a_favicon_and_no_request_is_answered_404(new_page, live_server, staff):
    page = new_page()
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{live_server.url}/signin")
    sign_in_browser(page, live_server.url, "alex@example.org")
    expect(page).to_have_url(f"{live_server.url}/console")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    for path in (icon, "/favicon.ico"):
        answer = page.context.request.get(f"{live_server.url}{path}")
        assert answer.status == 200, path
        assert answer.headers["content-type"].startswith("image/svg+xml"), path
    assert missing == []
