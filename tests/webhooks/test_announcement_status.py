"""Issue 14 item 5: the conference says whether the warning played, and who left and why."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from store.call_events import STREAM_KEY, Batch
from store.live_call import read_live, set_live
from tests.webhooks.test_voice_endpoints import BASE, SID, post

CONFERENCE = "CF" + "2" * 32
STAFF_LEG = "CA" + "5" * 32
SUPERVISOR_LEG = "CA" + "6" * 32
PATH = "/twilio/voice/conference"
QUERY = urlencode({"call": SID})
WARNING_URL = f"{BASE}/twilio/voice/announce/warning?{QUERY}"


def callback(event: str, participant: str = SID, sequence: str = "4", **extra: str) -> dict:
    return {"AccountSid": "AC" + "0" * 32, "ConferenceSid": CONFERENCE,
            "FriendlyName": SID, "StatusCallbackEvent": event, "CallSid": participant,
            "SequenceNumber": sequence, "Timestamp": "Tue, 01 Dec 2026 10:00:00 +0000",
            "Muted": "false", "Hold": "false", "Coaching": "false", **extra}


def batches(services) -> list[Batch]:
    return [Batch.decode(fields) for _id, fields in services.redis.xrange(STREAM_KEY)]


def connected(services) -> None:
    set_live(services.redis, SID, {"state": "connected", "staff_id": "3",
                                   "ringing_leg_sid": STAFF_LEG, "conference_sid": CONFERENCE,
                                   "warned": "1", "warning_state": "playing"})


def test_the_warning_played_is_logged_and_lets_the_call_end(client, services):
    connected(services)
    response = post(client, PATH, callback("announcement-end", AnnounceUrl=WARNING_URL),
                    query=QUERY)
    assert response.status_code == 204
    [batch] = batches(services)
    assert [(e.kind, e.key, e.detail) for e in batch.events] == [
        ("conference", f"conference:announcement-end:{SID}:4",
         {"event": "announcement-end", "participant": SID, "conference_sid": CONFERENCE}),
        ("warning_played", f"warning_played:{SID}:4", {"participant": SID}),
    ]
    live = read_live(services.redis, SID)
    assert live.warning_state == "played" and live.conference_sid == CONFERENCE


def test_a_warning_that_failed_is_logged_with_twilios_reason(client, services):
    connected(services)
    response = post(client, PATH, callback(
        "announcement-fail", AnnounceUrl=WARNING_URL,
        ReasonAnnouncementFailed="Unable to fetch the announcement <url>"), query=QUERY)
    assert response.status_code == 204
    [batch] = batches(services)
    assert [(e.kind, e.detail) for e in batch.events[1:]] == [
        ("warning_failed", {"participant": SID,
                            "reason": "Unable to fetch the announcement url"})]
    assert read_live(services.redis, SID).warning_state == "failed"


def test_another_announcement_is_no_news_of_the_warning(client, services):
    connected(services)
    other = f"{BASE}/twilio/voice/announce/closing?{QUERY}"
    assert post(client, PATH, callback("announcement-end", AnnounceUrl=other),
                query=QUERY).status_code == 204
    [batch] = batches(services)
    assert [e.kind for e in batch.events] == ["conference"]
    assert read_live(services.redis, SID).warning_state == "playing"


@pytest.mark.parametrize(("participant", "reason", "detail"), [
    (SID, "participant_hung_up",
     {"participant": SID, "party": "caller", "reason": "participant_hung_up",
      "call_status": "completed"}),
    (STAFF_LEG, "moderator_ended_conference",
     {"participant": STAFF_LEG, "party": "staff", "reason": "moderator_ended_conference",
      "call_status": "completed", "staff_id": 3}),
    (SUPERVISOR_LEG, "a_reason_twilio_adds_later",
     {"participant": SUPERVISOR_LEG, "party": "other", "reason": "unknown",
      "call_status": "completed"}),
])
def test_who_left_the_conference_and_why_is_on_the_timeline(client, services, participant,
                                                            reason, detail):
    connected(services)
    response = post(client, PATH, callback("participant-leave", participant, "9",
                                           ReasonParticipantLeft=reason,
                                           ParticipantCallStatus="completed"), query=QUERY)
    assert response.status_code == 204
    [batch] = batches(services)
    left = batch.events[1]
    assert (left.kind, left.key, left.detail) == (
        "left_conference", f"left:{participant}:9", detail)


def test_an_unsigned_announcement_callback_is_refused_and_changes_nothing(client, services):
    connected(services)
    response = post(client, PATH, callback("announcement-end", AnnounceUrl=WARNING_URL),
                    query=QUERY, signature="forged")
    assert response.status_code == 403
    assert services.redis.xlen(STREAM_KEY) == 0
    assert read_live(services.redis, SID).warning_state == "playing"
