"""The Twilio REST helpers, checked against a Prism mock of Twilio's own OpenAPI spec."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from store.twilio_rest import (
    BaseUrlHttpClient,
    TwilioRefused,
    TwilioUnavailable,
    announce_to_participant,
    build_client,
    dial_into_conference,
    end_call,
    redirect_call,
)
from tests.support.twilio_mock import TEST_ACCOUNT_SID, RecordingHttpClient, TwilioRest, free_port

ACCOUNT_PATH = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}"
CALL_SID = "CA" + "1" * 32
CONFERENCE_SID = "CF" + "2" * 32
CALLBACKS = "https://callflow.example.com"


def test_dialling_into_a_conference_is_accepted_by_twilios_spec(twilio_rest: TwilioRest) -> None:
    call_sid = dial_into_conference(
        twilio_rest.client,
        to="+15005550006",
        from_="+15005550001",
        join_url=f"{CALLBACKS}/conference/join",
        status_callback=f"{CALLBACKS}/call/status",
        timeout_seconds=25,
    )

    twilio_rest.http.assert_all_accepted()
    [sent] = twilio_rest.http.requests
    assert (sent.method, sent.path, sent.status) == ("POST", f"{ACCOUNT_PATH}/Calls.json", 201)
    assert sent.params == {
        "To": ["+15005550006"],
        "From": ["+15005550001"],
        "Url": [f"{CALLBACKS}/conference/join"],
        "Method": ["POST"],
        "StatusCallback": [f"{CALLBACKS}/call/status"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"],
    }
    assert call_sid.startswith("CA")


def test_redirecting_a_call_is_accepted_by_twilios_spec(twilio_rest: TwilioRest) -> None:
    redirect_call(twilio_rest.client, CALL_SID, f"{CALLBACKS}/call/next")

    twilio_rest.http.assert_all_accepted()
    [sent] = twilio_rest.http.requests
    assert (sent.method, sent.path, sent.status) == (
        "POST",
        f"{ACCOUNT_PATH}/Calls/{CALL_SID}.json",
        200,
    )
    assert sent.params == {"Url": [f"{CALLBACKS}/call/next"], "Method": ["POST"]}


def test_ending_a_call_is_accepted_by_twilios_spec(twilio_rest: TwilioRest) -> None:
    end_call(twilio_rest.client, CALL_SID)

    twilio_rest.http.assert_all_accepted()
    [sent] = twilio_rest.http.requests
    assert (sent.method, sent.path, sent.status) == (
        "POST",
        f"{ACCOUNT_PATH}/Calls/{CALL_SID}.json",
        200,
    )
    assert sent.params == {"Status": ["completed"]}


def test_announcing_to_a_participant_is_accepted_by_twilios_spec(twilio_rest: TwilioRest) -> None:
    announce_url = f"{CALLBACKS}/conference/announce"

    announce_to_participant(twilio_rest.client, CONFERENCE_SID, CALL_SID, announce_url)

    twilio_rest.http.assert_all_accepted()
    [sent] = twilio_rest.http.requests
    assert (sent.method, sent.path, sent.status) == (
        "POST",
        f"{ACCOUNT_PATH}/Conferences/{CONFERENCE_SID}/Participants/{CALL_SID}.json",
        200,
    )
    assert sent.params == {"AnnounceUrl": [announce_url], "AnnounceMethod": ["POST"]}


def test_an_unknown_call_status_is_refused_with_prisms_validation_text(
    twilio_rest: TwilioRest,
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_rest.client.calls(CALL_SID).update(status="bogus")

    # twilio's own exception only says "Unable to update record"; the reason is in the body.
    assert raised.value.status == 422
    [refused] = twilio_rest.http.refused()
    assert refused.params == {"Status": ["bogus"]}
    assert (
        "Request body property Status must be equal to one of the allowed values: "
        "canceled, completed" in refused.body
    )


def test_a_refused_helper_call_raises_twilio_refused_naming_the_field(
    twilio_rest: TwilioRest,
) -> None:
    with pytest.raises(TwilioRefused) as raised:
        redirect_call(twilio_rest.client, CALL_SID, "not a url")

    assert raised.value.status == 422
    assert raised.value.message == 'Request body property Url must match format "uri"'
    assert "UNPROCESSABLE_ENTITY" in raised.value.body
    assert twilio_rest.http.accepted() == []


def test_a_participant_addressed_by_conference_name_is_refused(twilio_rest: TwilioRest) -> None:
    with pytest.raises(TwilioRefused) as raised:
        announce_to_participant(
            twilio_rest.client, "support-room", CALL_SID, f"{CALLBACKS}/conference/announce"
        )

    assert raised.value.status == 422
    assert 'conferencesid must match pattern "^CF[0-9a-fA-F]{32}$"' in raised.value.message


def test_assert_all_accepted_shows_the_refusal_reasons(twilio_rest: TwilioRest) -> None:
    with pytest.raises(TwilioRefused):
        end_call(twilio_rest.client, "not-a-call-sid")

    with pytest.raises(AssertionError, match='sid must match pattern "\\^CA'):
        twilio_rest.http.assert_all_accepted()


def test_an_unreachable_twilio_raises_twilio_unavailable() -> None:
    http = BaseUrlHttpClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    client = build_client(TEST_ACCOUNT_SID, "token", http_client=http)

    with pytest.raises(TwilioUnavailable):
        end_call(client, CALL_SID)


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.twilio.com", "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json"),
        ("http://127.0.0.1:4010", "http://127.0.0.1:4010/2010-04-01/Accounts/AC1/Calls.json"),
        ("http://127.0.0.1:4010/", "http://127.0.0.1:4010/2010-04-01/Accounts/AC1/Calls.json"),
    ],
)
def test_base_url_client_moves_api_twilio_com_onto_its_base_url(
    base_url: str, expected: str
) -> None:
    http = BaseUrlHttpClient(base_url)

    assert http.rewrite_url("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json") == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/2010-04-01/Accounts/AC1/Calls.json",
        "https://api.twilio.com.evil.example.com/2010-04-01/Accounts/AC1/Calls.json",
        "https://api.sydney.au1.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
        "https://user@api.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
        "http://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
    ],
)
def test_base_url_client_refuses_any_other_host(url: str) -> None:
    http = RecordingHttpClient("http://127.0.0.1:9")

    with pytest.raises(ValueError, match="refusing a request outside"):
        http.request("POST", url, data={"Status": "completed"})

    assert http.requests == []


def test_build_client_ignores_twilio_edge_and_region_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")

    client = build_client(TEST_ACCOUNT_SID, "token")

    url = "https://api.twilio.com/2010-04-01/Accounts.json"
    assert client.get_hostname(url) == url


@pytest.mark.parametrize(("account_sid", "auth_token"), [("", "token"), (TEST_ACCOUNT_SID, "")])
def test_build_client_refuses_missing_credentials(account_sid: str, auth_token: str) -> None:
    with pytest.raises(ValueError, match="required"):
        build_client(account_sid, auth_token)
