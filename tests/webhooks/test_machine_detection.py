"""Issue 14 item 6: a staff phone answered by a machine is no answer, and the caller moves on."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from store.call_events import STREAM_KEY, Batch, Effect
from store.live_call import set_live
from tests.webhooks.test_voice_endpoints import SID, post, twiml

STAFF_LEG = "CA" + "5" * 32


def leg(answered_by: str | None, status: str = "in-progress") -> dict[str, str]:
    params = {"AccountSid": "AC" + "0" * 32, "CallSid": STAFF_LEG, "CallStatus": status,
              "Direction": "outbound-api", "From": "+441632960000", "To": "+447700900999"}
    if answered_by is not None:
        params["AnsweredBy"] = answered_by
    return params


def batches(services) -> list[Batch]:
    return [Batch.decode(fields) for _id, fields in services.redis.xrange(STREAM_KEY)]


def ringing(services) -> None:
    set_live(services.redis, SID, {"state": "ringing", "ringing_staff_id": "7",
                                   "ringing_leg_sid": STAFF_LEG})


@pytest.mark.parametrize(("query", "effects"), [
    # a designated contact's voicemail: the fallback is rung, and the contact is told
    ({"leg": "designated", "attempt": 0, "fallback": 8},
     [Effect("free_staff", "free:agent:7:0", (7,)),
      Effect("dial_person", "dial:fallback:8", (8, "fallback")),
      Effect("passed_on", "passed-on:agent:7:0", (7, "fallback"))]),
    # a pool agent's voicemail: they are set away and the next agent is rung
    ({"leg": "pool", "attempt": 2, "fallback": ""},
     [Effect("next_agent", "missed:agent:7:2", (7, 2))]),
    # the fallback's voicemail: the caller is offered voicemail (policy 4.1)
    ({"leg": "fallback", "attempt": 0, "fallback": ""},
     [Effect("free_staff", "free:agent:7:0", (7,)),
      Effect("offer_voicemail", "voicemail", ())]),
])
def test_a_machine_answering_is_hung_up_on_and_the_caller_moves_on(client, services, query,
                                                                   effects):
    ringing(services)
    path = "/twilio/voice/agent/join"
    root = twiml(post(client, path, leg("machine_start"),
                      query=urlencode({"call": SID, "staff": 7, **query})))
    assert [child.tag for child in root] == ["Hangup"]
    [batch] = batches(services)
    attempt = query["attempt"]
    assert [(e.kind, e.key) for e in batch.events] == [
        ("answering_machine", f"machine:7:{attempt}"),
        ("no_answer", f"agent:7:{attempt}:machine")]
    assert batch.events[0].detail == {"staff_id": 7, "leg": query["leg"],
                                      "answered_by": "machine_start"}
    assert batch.events[1].detail["status"] == "machine"
    assert list(batch.effects) == effects
    assert "state" not in batch.live  # nobody connected: the caller still waits


@pytest.mark.parametrize("answered_by", ["human", "unknown", None])
def test_a_person_answering_joins_the_caller(client, services, answered_by):
    ringing(services)
    root = twiml(post(client, "/twilio/voice/agent/join", leg(answered_by),
                      query=urlencode({"call": SID, "staff": 7, "leg": "designated"})))
    assert root.find("./Dial/Conference").text == SID
    [batch] = batches(services)
    assert [e.kind for e in batch.events] == ["connected"]


def test_the_machines_leg_ending_is_not_logged_as_the_agent_leaving(client, services):
    ringing(services)
    response = post(client, "/twilio/voice/agent/status", leg("machine_start", "completed"),
                    query=urlencode({"call": SID, "staff": 7, "leg": "designated",
                                     "attempt": 0}))
    assert response.status_code == 204
    assert services.redis.xlen(STREAM_KEY) == 0


def test_a_forged_answer_is_refused_and_moves_nobody(client, services):
    ringing(services)
    response = post(client, "/twilio/voice/agent/join", leg("machine_start"),
                    query=urlencode({"call": SID, "staff": 7, "leg": "designated"}),
                    signature="forged")
    assert response.status_code == 403
    assert services.redis.xlen(STREAM_KEY) == 0
