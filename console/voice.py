"""Access tokens that let the console be an agent's phone (the Twilio Voice JavaScript SDK)."""

from __future__ import annotations

from dataclasses import dataclass

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from config.settings import Settings

TOKEN_TTL_SECONDS = 3600


class VoiceNotConfigured(RuntimeError):
    """Twilio is configured but the API key needed to sign voice tokens is not."""


@dataclass(frozen=True)
class VoiceToken:
    """A signed access token for one client identity, and how long it lasts."""

    identity: str
    token: str
    ttl_seconds: int


def voice_token(settings: Settings, identity: str) -> VoiceToken:
    """A token whose VoiceGrant lets the browser take calls dialled to `client:<identity>`."""
    key_sid, key_secret = settings.twilio_api_key_sid, settings.twilio_api_key_secret
    if not key_sid or not key_secret:
        raise VoiceNotConfigured("TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET are not set")
    # Agents only take calls; outgoing calls need a TwiML app, so grant them only if one is set.
    grant = VoiceGrant(incoming_allow=True,
                       outgoing_application_sid=settings.twilio_twiml_app_sid or None)
    token = AccessToken(settings.twilio_account_sid, key_sid, key_secret, identity=identity,
                        ttl=TOKEN_TTL_SECONDS, grants=[grant])
    return VoiceToken(identity, token.to_jwt(), TOKEN_TTL_SECONDS)
