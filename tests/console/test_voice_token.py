"""The console page and the access token that makes it the agent's phone (Twilio Voice SDK)."""

from __future__ import annotations

from twilio.jwt import Jwt

from config.settings import DEV_TWILIO_AUTH_TOKEN
from service.app import create_app
from tests.support.web_client import sign_in

KEY_SID = "SK" + "a" * 32
KEY_SECRET = "an-api-key-secret-of-32-characters"
APP_SID = "AP" + "b" * 32


def _client(services, **settings):
    services.settings = services.settings.with_overrides(**settings)
    return create_app(services=services).test_client()


def test_an_agent_gets_a_voice_grant_for_their_own_client_identity(services, staff, clock):
    client = _client(services, twilio_api_key_sid=KEY_SID, twilio_api_key_secret=KEY_SECRET,
                     twilio_twiml_app_sid=APP_SID)
    sign_in(client, "alex@example.org")
    response = client.get("/console/voice-token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json["identity"] == "alex"
    token = Jwt.from_jwt(response.json["token"], KEY_SECRET)
    grants = token.payload["grants"]
    assert grants["identity"] == "alex"
    assert grants["voice"]["incoming"] == {"allow": True}
    assert grants["voice"]["outgoing"]["application_sid"] == APP_SID
    assert token.payload["iss"] == KEY_SID
    assert token.payload["sub"] == services.settings.twilio_account_sid


def test_without_an_api_key_the_token_is_refused_with_the_settings_to_set(services, staff,
                                                                          clock):
    client = _client(services)
    sign_in(client, "alex@example.org")
    response = client.get("/console/voice-token")
    assert response.status_code == 503
    assert "TWILIO_API_KEY_SID" in response.json["error"]


def test_without_twilio_there_is_no_token_and_the_console_uses_the_simulator(
        services, staff, clock):
    services.settings = services.settings.with_overrides(twilio_auth_token=DEV_TWILIO_AUTH_TOKEN)
    client = _client(services)
    sign_in(client, "alex@example.org")
    assert client.get("/console/voice-token").status_code == 404
    page = client.get("/console")
    assert page.status_code == 200
    assert b'data-phone="simulator"' in page.data
    assert b"twilio.min.js" not in page.data


def test_with_twilio_the_console_loads_the_sdk_served_by_the_app(services, staff, clock):
    client = _client(services)
    sign_in(client, "alex@example.org")
    page = client.get("/console")
    assert b'data-phone="twilio"' in page.data
    assert b'src="/static/console/vendor/twilio.min.js"' in page.data
    sdk = client.get("/static/console/vendor/twilio.min.js")
    assert sdk.status_code == 200 and b"twilio" in sdk.data[:2000]
    sdk.close()


def test_the_console_is_for_agents_and_supervisors(services, staff, clock):
    client = _client(services)
    sign_in(client, "manager@example.org")
    assert client.get("/console").status_code == 403
    assert client.get("/console/voice-token").status_code == 403
    assert client.get("/console", headers={"Accept": "text/html"}).status_code == 403
