"""The screen pop does not wait for the console's poll: the call is read when the phone rings
and when the agent answers (issue 15: caller answered -> the flag on the agent's screen)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from callflow.call_state import CallState
from store.agent_pool import AgentPool
from store.live_call import read_live
from tests.browser.conftest import sign_in_browser

pytestmark = pytest.mark.browser

CHRIS = "07700 900456"  # demo register: Tue/Thu 10:00-12:00, designated contact alex
TEN_MINUTES_MS = 600_000
ANSWER_FOLLOW_MS = 150  # console.js: after answering, the call is read this often
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_with_a_ten_minute_poll_the_flag_shows_on_ring_and_the_call_connects_on_answer(
        new_page, live_server, demo_register, staff):
    agent = new_page()
    reads: list[str] = []
    agent.on("request", lambda request: reads.append(request.url)
             if urlsplit(request.url).path == "/api/calls/current" else None)
    sign_in_browser(agent, live_server.url, "alex@example.org")
    # The safety-net poll every ten minutes: only the reads on ring and answer can show the call.
    agent.goto(f"{live_server.url}/console?poll={TEN_MINUTES_MS}")
    agent.get_by_role("button", name="Available").click()
    expect(agent.locator("#availability")).to_have_text("Available")
    reads_before_the_call = len(reads)

    phone = new_page()
    phone.goto(f"{live_server.url}/simulator")
    phone.get_by_role("radio", name=re.compile(re.escape(CHRIS))).check()
    phone.get_by_role("button", name="Call the centre").click()

    # The phone rings with the flag already on screen and announced: known before picking up.
    expect(agent.get_by_role("button", name="Answer")).to_be_visible()
    expect(agent.locator("#poi")).to_be_visible()
    expect(agent.locator("#poi")).to_contain_text("PERSON OF INTEREST")
    expect(agent.locator("#call-state")).to_have_text("Ringing you")
    expect(agent.locator("#call-announcer")).to_have_text(
        "Incoming call from a person of interest. Answer to speak to the caller.")
    assert len(reads) == reads_before_the_call + 1, "one read, on the ring, and no poll"

    agent.get_by_role("button", name="Answer").click()
    expect(agent.locator("#call-state")).to_contain_text("Connected")
    expect(agent.locator("#poi")).to_be_visible()
    expect(phone.locator("#line-state")).to_have_text(re.compile("Connected"))
    assert len(reads) > reads_before_the_call + 1


def test_the_poll_cannot_be_made_faster_than_the_consoles_own(new_page, live_server, staff):
    agent = new_page()
    sign_in_browser(agent, live_server.url, "alex@example.org")
    agent.goto(f"{live_server.url}/console?poll=1")
    starts = agent.wait_for_function("""() => {
        const reads = performance.getEntriesByType("resource")
            .filter(entry => new URL(entry.name).pathname === "/api/calls/current");
        return reads.length >= 3 && reads.map(entry => entry.startTime);
    }""").json_value()
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 700, gaps


# A stand-in for the Twilio Voice SDK (console/static/vendor/twilio.min.js): a Device that
# registers at once and rings when the test says so, and a call whose accept() fires "accept".
FAKE_VOICE_SDK = """
window.Twilio = {Device: function () {
  var device = this, handlers = {};
  device.on = function (name, handler) { handlers[name] = handler; };
  device.register = function () { handlers.registered(); return Promise.resolve(); };
  device.updateToken = function () {};
  device.ring = function () {
    var listeners = {};
    var incoming = {
      on: function (name, handler) { (listeners[name] = listeners[name] || []).push(handler); },
      accept: function () { (listeners.accept || []).forEach(function (h) { h(incoming); }); },
      reject: function () {}, disconnect: function () {},
      isMuted: function () { return false; }, mute: function () {},
    };
    handlers.incoming(incoming);
  };
  window.fakeDevice = device;
}};
"""


class TestWithTheVoiceSdk:
    """The console's phone is the Twilio Voice SDK (a stand-in); Twilio's REST API and the
    caller are still the simulator's."""

    @pytest.fixture
    def settings(self, settings):
        return settings.with_overrides(twilio_auth_token="screen-pop-test-auth-token")

    def test_the_flag_shows_on_incoming_and_the_call_connects_on_accept(
            self, new_page, live_server, demo_register, staff):
        agent = new_page()
        agent.route("**/vendor/twilio.min.js", lambda route: route.fulfill(
            body=FAKE_VOICE_SDK, content_type="text/javascript"))
        agent.route("**/console/voice-token", lambda route: route.fulfill(
            json={"token": "stand-in"}))
        reads: list[str] = []
        agent.on("request", lambda request: reads.append(request.url)
                 if urlsplit(request.url).path == "/api/calls/current" else None)
        sign_in_browser(agent, live_server.url, "alex@example.org")
        # The page's clock stands still: no poll comes round, only what the phone does reads.
        agent.clock.install(time=START)
        agent.clock.pause_at(START)
        agent.goto(f"{live_server.url}/console?poll={TEN_MINUTES_MS}")
        expect(agent.locator("#phone-state")).to_have_text("Phone: this browser")
        agent.get_by_role("button", name="Available").click()
        expect(agent.locator("#availability")).to_have_text("Available")

        api = agent.context.request
        assert api.post(f"{live_server.url}/simulator/calls", data={"from": CHRIS}).ok
        leg = _ringing_leg(api, live_server.url)
        reads_before_the_ring = len(reads)
        agent.evaluate("() => window.fakeDevice.ring()")

        expect(agent.get_by_role("button", name="Answer")).to_be_visible()
        expect(agent.locator("#poi")).to_be_visible()
        expect(agent.locator("#call-state")).to_have_text("Ringing you")
        assert len(reads) == reads_before_the_ring + 1, "one read, on the ring, and no poll"

        agent.get_by_role("button", name="Answer").click()
        # What Twilio does when the browser accepts: the leg is answered, and the join webhook
        # tells callflow (after the console's first read on accept).
        answered = agent.evaluate("""async (sid) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const response = await fetch(`/simulator/legs/${sid}/answer`, {method: "POST",
                headers: {"X-CSRF-Token": token, "Content-Type": "application/json"}, body: "{}"});
            return response.status;
        }""", leg)
        assert answered == 200
        _wait_until_connected(live_server.services, staff["agent"].id)
        expect(agent.locator("#call-state")).to_have_text("Ringing you")
        agent.clock.run_for(ANSWER_FOLLOW_MS)  # the console reads again shortly after accept
        expect(agent.locator("#call-state")).to_contain_text("Connected")
        expect(agent.locator("#poi")).to_be_visible()


def _wait_until_connected(services, staff_id: int, seconds: float = 15.0) -> None:
    """Until callflow has the agent's call as connected (the join webhook has been handled)."""
    pool = AgentPool(services.redis)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sid = pool.current_call(staff_id)
        if sid and read_live(services.redis, sid).state == CallState.CONNECTED:
            return
        time.sleep(0.1)
    pytest.fail("the call never connected")


def _ringing_leg(api, base_url: str, seconds: float = 15.0) -> str:
    """The simulated leg ringing the signed-in member of staff, once it rings."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        legs = api.get(f"{base_url}/simulator/legs").json()["legs"]
        ringing = [leg["sid"] for leg in legs if leg["status"] == "ringing"]
        if ringing:
            return ringing[0]
        time.sleep(0.1)
    pytest.fail("no leg rang the agent")
