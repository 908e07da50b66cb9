"""Time to recover after an abusive call, and colleagues warned when the number rings again.

Issue 14 items 3 and 4; policy 4.5 (staff may end abusive calls) and 5.2 (highlighted to staff).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from callflow.words import duration as time_left_text
from console.workspace.timeline import describe
from store.agent_pool import RECOVERY_KEY, AgentPool, Availability, Claim
from store.call_queries import TimelineEvent
from store.db import transaction
from store.models import Call, CallEvent
from tests.conftest import NOW
from tests.console import signed_in
from tests.console.test_api import (  # noqa: F401 (rest: the Prism mock fixture)
    CALLER,
    OTHER_SID,
    SID,
    bearer,
    logged,
    on_call,
    rest,
)

# Ending a call asks Twilio (the Prism mock of Twilio's spec, shared with test_api.py).
uses_twilio = pytest.mark.usefixtures("rest")

EARLIER_SID = "CA" + "4" * 32


@pytest.fixture
def alex(staff):
    return staff["agent"]


def end_for(client, services, member, reason: str):
    """The member of staff ends their (warned) call for `reason`; the caller then hangs up."""
    on_call(services, member, warned="1")
    response = client.post(f"/api/calls/{SID}/end", json={"reason": reason},
                           headers=bearer(services, member))
    assert response.status_code == 200, response.json
    AgentPool(services.redis).release(member.id, SID)
    return response


@uses_twilio
@pytest.mark.parametrize("reason", ["aggressive_abusive", "threat_or_violence"])
def test_ending_a_call_for_abuse_or_threats_takes_the_agent_off_the_queue(
        client, services, alex, reason):
    response = end_for(client, services, alex, reason)
    until = (NOW + timedelta(minutes=5)).isoformat()
    assert response.json["recovery_until"] == until
    [ended] = logged(services, "ended_by_agent")
    assert ended.detail["recovery_until"] == until, "the recovery is on the call's timeline"
    step = describe(TimelineEvent(ended.kind, ended.at, dict(ended.detail)), {}, {})
    assert step.text.endswith("; then 5 minutes off calls to recover"), step.text
    pool = AgentPool(services.redis)
    assert pool.availability(alex.id) is Availability.RECOVERING
    assert pool.claim_longest_idle(OTHER_SID) is None
    assert pool.claim_named(alex.id, OTHER_SID) is Claim.AWAY, "nor as a designated contact"

    me = client.get("/api/me", headers=bearer(services, alex)).json
    assert me["availability"] == "recovering"
    # The countdown runs on Redis's clock (the recovery key's time to live), so on a busy
    # machine a second or two may have gone by since the call was ended.
    left = me["recovery"]["seconds_left"]
    assert 290 < left <= 300
    assert me["recovery"] == {"until": until, "until_text": "10:05am", "seconds_left": left,
                              "time_left_text": time_left_text(left), "early_return": False}


@uses_twilio
def test_a_reason_that_is_not_abuse_gives_no_recovery(client, services, alex):
    response = end_for(client, services, alex, "unreasonable_demands")
    assert response.json["recovery_until"] is None
    assert AgentPool(services.redis).claim_longest_idle(OTHER_SID) == alex.id


@uses_twilio
def test_coming_back_early_is_refused_plainly_unless_the_centre_allows_it(
        client, services, alex):
    end_for(client, services, alex, "aggressive_abusive")
    headers = bearer(services, alex)
    refused = client.put("/api/me/availability", json={"availability": "available"},
                         headers=headers)
    assert refused.status_code == 409
    assert refused.json == {"error": "you are taking time to recover after an abusive call; "
                                     "you can take calls again at 10:05am"}
    assert AgentPool(services.redis).claim_longest_idle(OTHER_SID) is None

    services.settings = services.settings.with_overrides(recovery_early_return=True)
    assert client.get("/api/me", headers=headers).json["recovery"]["early_return"] is True
    back = client.put("/api/me/availability", json={"availability": "available"},
                      headers=headers)
    assert back.status_code == 200, back.json
    assert back.json["availability"] == "available" and back.json["recovery"] is None
    assert AgentPool(services.redis).claim_longest_idle(OTHER_SID) == alex.id


@uses_twilio
def test_going_away_while_recovering_keeps_the_recovery(client, services, alex):
    end_for(client, services, alex, "threat_or_violence")
    headers = bearer(services, alex)
    away = client.put("/api/me/availability", json={"availability": "away"}, headers=headers)
    assert away.status_code == 200 and away.json["recovery"]["seconds_left"] == 300
    back = client.put("/api/me/availability", json={"availability": "available"},
                      headers=headers)
    assert back.status_code == 409
    # Asking to come back makes them available as soon as the recovery is over, not before.
    pool = AgentPool(services.redis)
    assert pool.availability(alex.id) is Availability.RECOVERING
    assert pool.claim_longest_idle(OTHER_SID) is None


@uses_twilio
def test_when_the_recovery_is_over_the_agent_takes_calls_again(client, services, alex):
    end_for(client, services, alex, "aggressive_abusive")
    services.redis.delete(RECOVERY_KEY.format(staff_id=alex.id))  # as Redis expires it
    me = client.get("/api/me", headers=bearer(services, alex)).json
    assert me["availability"] == "available" and me["recovery"] is None
    assert AgentPool(services.redis).claim_longest_idle(OTHER_SID) == alex.id


@uses_twilio
def test_an_abusive_reason_given_as_wrap_up_gives_time_to_recover(client, services, alex):
    on_call(services, alex, warned="1")
    headers = bearer(services, alex)
    assert client.post(f"/api/calls/{SID}/end", json={}, headers=headers).status_code == 200
    pool = AgentPool(services.redis)
    pool.release(alex.id, SID)
    given = client.post(f"/api/calls/{SID}/wrap-up", json={"reason": "aggressive_abusive"},
                        headers=headers)
    assert given.status_code == 200, given.json
    until = (NOW + timedelta(minutes=5)).isoformat()
    assert given.json["recovery_until"] == until
    [wrap_up] = logged(services, "wrap_up")
    assert wrap_up.detail["recovery_until"] == until
    step = describe(TimelineEvent(wrap_up.kind, wrap_up.at, dict(wrap_up.detail)), {}, {})
    assert step.text.endswith("; then 5 minutes off calls to recover"), step.text
    assert pool.availability(alex.id) is Availability.RECOVERING
    assert pool.claim_longest_idle(OTHER_SID) is None


@uses_twilio
def test_an_agent_still_on_the_call_recovers_once_it_ends(client, services, alex):
    on_call(services, alex, warned="1")
    client.post(f"/api/calls/{SID}/end", json={"reason": "aggressive_abusive"},
                headers=bearer(services, alex))
    pool = AgentPool(services.redis)
    assert pool.availability(alex.id) is Availability.BUSY  # the closing statement plays
    assert pool.release(alex.id, SID) is True
    assert pool.availability(alex.id) is Availability.RECOVERING


@uses_twilio
def test_no_recovery_when_the_centre_sets_none(client, services, alex):
    services.settings = services.settings.with_overrides(recovery_minutes=0)
    response = end_for(client, services, alex, "threat_or_violence")
    assert response.json["recovery_until"] is None
    assert AgentPool(services.redis).claim_longest_idle(OTHER_SID) == alex.id


@uses_twilio
def test_supervisors_see_who_is_recovering_and_agents_cannot(client, services, staff, alex):
    end_for(client, services, alex, "aggressive_abusive")
    seen = client.get("/api/staff/recovering", headers=bearer(services, staff["supervisor"]))
    assert seen.status_code == 200
    assert seen.json == {"recovering": [{
        "staff_id": alex.id, "name": "Agent", "until": (NOW + timedelta(minutes=5)).isoformat(),
        "until_text": "10:05am", "seconds_left": 300, "time_left_text": "5 minutes"}]}
    refused = client.get("/api/staff/recovering", headers=bearer(services, staff["agent2"]))
    assert refused.status_code == 403


# --- colleagues warned (policy 5.2) ------------------------------------------------------------


def earlier_call(services, *, reason: str | None, days_ago: float, number: str = CALLER,
                 wrap_up_reason: str | None = None) -> None:
    """A call from `number` an agent ended `days_ago` (its reason given then, or as wrap-up)."""
    at = NOW - timedelta(days=days_ago)
    with transaction(services.sessions) as db:
        db.add(Call(call_sid=EARLIER_SID, started_at=at - timedelta(minutes=3), ended_at=at,
                    from_number=number, ended_by_agent=True, warned=True))
        db.add(CallEvent(event_key=f"{EARLIER_SID}:ended_by_agent", call_sid=EARLIER_SID,
                         kind="ended_by_agent", at=at, detail={"reason": reason}))
        if wrap_up_reason:
            db.add(CallEvent(event_key=f"{EARLIER_SID}:wrap_up", call_sid=EARLIER_SID,
                             kind="wrap_up", at=at + timedelta(minutes=1),
                             detail={"reason": wrap_up_reason}))


def current(client, services, member) -> dict:
    response = client.get("/api/calls/current", headers=bearer(services, member))
    assert response.status_code == 200, response.json
    return response.json["call"]


def test_the_screen_pop_says_the_numbers_last_call_was_ended_for_abuse(client, services, alex):
    earlier_call(services, reason="aggressive_abusive", days_ago=2)
    on_call(services, alex)
    call = current(client, services, alex)
    assert call["person_of_interest"] is None, "warned even though not on the register"
    assert call["last_ended_for_abuse"] == {
        "when": "Sun 29 Nov 2026, 10am",
        "reason": "Aggressive, abusive or intimidating behaviour (3.1)",
        "reason_text": "aggressive, abusive or intimidating behaviour",
        "reason_code": "aggressive_abusive", "call_sid": EARLIER_SID}


def test_a_reason_given_as_wrap_up_warns_colleagues_too(client, services, alex):
    earlier_call(services, reason=None, wrap_up_reason="threat_or_violence", days_ago=1)
    on_call(services, alex)
    warned = current(client, services, alex)["last_ended_for_abuse"]
    assert warned["reason_text"] == "threats or violence"
    assert warned["when"] == "Mon 30 Nov 2026, 10:01am"


@pytest.mark.parametrize(("reason", "days_ago", "number"), [
    ("unreasonable_demands", 2, CALLER),  # not abuse
    ("aggressive_abusive", 31, CALLER),  # beyond CALLFLOW_ABUSE_MEMORY_DAYS (30)
    ("aggressive_abusive", 2, "+447700900999"),  # another number
])
def test_no_warning_for_other_reasons_older_calls_or_other_numbers(
        client, services, alex, reason, days_ago, number):
    earlier_call(services, reason=reason, days_ago=days_ago, number=number)
    on_call(services, alex)
    assert current(client, services, alex)["last_ended_for_abuse"] is None


def test_no_warning_for_a_withheld_number_or_when_the_centre_turns_it_off(
        client, services, alex):
    earlier_call(services, reason="aggressive_abusive", days_ago=2)
    on_call(services, alex, withheld="1")
    assert current(client, services, alex)["last_ended_for_abuse"] is None
    on_call(services, alex)
    services.settings = services.settings.with_overrides(abuse_memory_days=0)
    assert current(client, services, alex)["last_ended_for_abuse"] is None


def test_the_repeated_contact_list_marks_and_links_a_number_last_ended_for_abuse(
        client, services):
    earlier_call(services, reason="threat_or_violence", days_ago=0.5)
    with transaction(services.sessions) as db:
        for n in range(6):  # over CALLFLOW_REPEAT_CALLS_PER_DAY (5) today
            db.add(Call(call_sid="CA" + f"{n:032d}", from_number=CALLER,
                        started_at=NOW - timedelta(minutes=10 + n)))
    signed_in(client, "supervisor@example.org")
    page = client.get("/workspace/repeat-callers")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert (f'href="/workspace/calls/{EARLIER_SID}">last call ended for threats or violence on '
            "Mon 30 Nov 2026, 10pm</a>") in html
