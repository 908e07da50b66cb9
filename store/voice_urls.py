"""The URLs of callflow's voice webhooks, which Twilio calls back: built here and nowhere else."""

from __future__ import annotations

from urllib.parse import urlencode

VOICE_PREFIX = "/twilio/voice"


def voice_url(base_url: str, path: str, **query: object) -> str:
    """An absolute URL of a voice webhook (path after /twilio/voice), for Twilio to call back."""
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base_url}{VOICE_PREFIX}{path}{suffix}"
