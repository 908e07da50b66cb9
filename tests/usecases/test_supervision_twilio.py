"""The supervisor's REST requests, checked against a Prism mock of Twilio's own OpenAPI spec."""

from __future__ import annotations

import pytest

from callflow.supervision import SupervisionMode, participant_flags
from store.twilio_rest import add_supervisor, update_supervisor
from tests.support.twilio_mock import TEST_ACCOUNT_SID, TwilioRest

CONFERENCE_SID = "CF" + "2" * 32
AGENT_LEG = "CA" + "5" * 32
SUPERVISOR_LEG = "CA" + "6" * 32
STATUS_URL = "https://callflow.example.com/twilio/voice/supervisor/status?call=CA1&staff=2"
PARTICIPANTS = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Conferences/{CONFERENCE_SID}/Participants"


@pytest.mark.parametrize(("mode", "flags"), [
    (SupervisionMode.LISTEN, {"Muted": ["true"], "Coaching": ["false"]}),
    (SupervisionMode.COACH, {"Muted": ["false"], "Coaching": ["true"],
                             "CallSidToCoach": [AGENT_LEG]}),
    (SupervisionMode.BARGE, {"Muted": ["false"], "Coaching": ["false"]}),
])
def test_a_supervisor_is_dialled_into_the_conference_as_twilios_spec_accepts(
        twilio_rest: TwilioRest, mode, flags) -> None:
    wanted = participant_flags(mode, AGENT_LEG)
    leg_sid = add_supervisor(
        twilio_rest.client, CONFERENCE_SID, to="client:sam", from_="+441632960000",
        muted=wanted.muted, coaching=wanted.coaching, call_sid_to_coach=wanted.call_sid_to_coach,
        timeout_seconds=20, status_callback=STATUS_URL)

    twilio_rest.http.assert_all_accepted()
    [sent] = twilio_rest.http.requests
    assert (sent.method, sent.path, sent.status) == ("POST", f"{PARTICIPANTS}.json", 201)
    assert sent.params == {
        "From": ["+441632960000"], "To": ["client:sam"], "Timeout": ["20"], "Beep": ["false"],
        "StartConferenceOnEnter": ["false"], "EndConferenceOnExit": ["false"],
        "StatusCallback": [STATUS_URL], "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["completed"], **flags}
    assert leg_sid.startswith("CA")


@pytest.mark.parametrize(("mode", "flags"), [
    (SupervisionMode.LISTEN, {"Muted": ["true"], "Coaching": ["false"]}),
    (SupervisionMode.COACH, {"Muted": ["false"], "Coaching": ["true"],
                             "CallSidToCoach": [AGENT_LEG]}),
    (SupervisionMode.BARGE, {"Muted": ["false"], "Coaching": ["false"]}),
])
def test_switching_mode_updates_the_participant_as_twilios_spec_accepts(
        twilio_rest: TwilioRest, mode, flags) -> None:
    wanted = participant_flags(mode, AGENT_LEG)
    update_supervisor(twilio_rest.client, CONFERENCE_SID, SUPERVISOR_LEG, muted=wanted.muted,
                      coaching=wanted.coaching, call_sid_to_coach=wanted.call_sid_to_coach)

    twilio_rest.http.assert_all_accepted()
    [sent] = twilio_rest.http.requests
    assert (sent.method, sent.path, sent.status) == (
        "POST", f"{PARTICIPANTS}/{SUPERVISOR_LEG}.json", 200)
    assert sent.params == flags
