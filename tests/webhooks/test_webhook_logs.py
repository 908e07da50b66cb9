"""What the webhooks log: each record names its call by SID, and nothing about the caller."""

import pytest

from service.app import create_app
from tests.support.log_capture import captured_log
from tests.webhooks.test_voice_endpoints import SID, incoming, post, twiml

NUMBER = "+447700900555"
OTHER_SID = "CA" + "c" * 32


@pytest.fixture
def redis_down(tmp_path, settings, clock, more_services):
    """Services whose Redis refuses every connection, so the call path logs as it falls back."""
    return more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v"))


def test_a_signed_incoming_call_logs_in_json_with_its_call_sid_and_no_number(redis_down):
    with captured_log("json") as log:
        twiml(post(create_app(services=redis_down).test_client(), "/twilio/voice/incoming",
                   incoming(NUMBER)))
        records = log.records()
        output = log.stream.getvalue()
    assert [r["message"] for r in records if r["level"] == "WARNING"], "Redis down is logged"
    assert {r["call_sid"] for r in records} == {SID}
    assert NUMBER not in output and NUMBER[3:] not in output


def test_a_voice_webhook_logs_with_the_caller_named_by_its_query(redis_down):
    client = create_app(services=redis_down).test_client()
    with captured_log("json") as log:
        response = post(client, "/twilio/voice/status",
                        {"CallSid": SID, "CallStatus": "completed", "SequenceNumber": "3"},
                        query=f"call={SID}")
        records = log.records()
    assert response.status_code == 204
    assert records, "spooling the status because Redis is down is logged"
    assert {r["call_sid"] for r in records} == {SID}


def test_the_call_sid_does_not_outlive_its_request(redis_down):
    import logging

    client = create_app(services=redis_down).test_client()
    with captured_log("json") as log:
        post(client, "/twilio/voice/status",
             {"CallSid": OTHER_SID, "CallStatus": "completed", "SequenceNumber": "1"},
             query=f"call={OTHER_SID}")
        logging.getLogger("tests").warning("after the request")
        after = log.records()[-1]
    assert after["message"] == "after the request"
    assert after["call_sid"] is None
