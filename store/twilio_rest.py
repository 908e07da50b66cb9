"""The one place that builds the Twilio REST client, and the REST calls the workers make."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TWILIO_API_BASE_URL = "https://api.twilio.com"
TWILIO_API_HOST = "api.twilio.com"
DEFAULT_TIMEOUT_SECONDS = 5.0

# Values of Twilio's form keys, as the 2010-04-01 spec spells them.
HTTP_POST = "POST"
CALL_STATUS_COMPLETED = "completed"
CALL_STATUS_CANCELED = "canceled"
CALL_PROGRESS_EVENTS = ("initiated", "ringing", "answered", "completed")


class TwilioRefused(Exception):
    """Twilio answered a request with a 4xx: retrying the same request will not help."""

    def __init__(self, status: int, message: str, body: str = "", code: int | None = None):
        super().__init__(f"Twilio refused the request ({status}): {message}")
        self.status = status
        self.message = message
        self.body = body
        self.code = code


class TwilioUnavailable(Exception):
    """Twilio could not be reached or answered 5xx: the request may be retried."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, sending api.twilio.com requests to `base_url` and nowhere else."""

    def __init__(
        self,
        base_url: str = TWILIO_API_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        **kwargs: Any,
    ) -> None:
        """Check `base_url` and set up twilio's session with a short timeout."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL with a host, not {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"base_url must not carry a query or fragment: {base_url!r}")
        super().__init__(timeout=timeout, **kwargs)
        self.base_url = base_url.rstrip("/")
        self._last = threading.local()

    def rewrite_url(self, url: str) -> str:
        """Return `url` re-rooted at `base_url`; ValueError unless it is https://api.twilio.com."""
        parts = urlsplit(url)
        # Compare the whole netloc: a prefix test would let api.twilio.com.evil.example through,
        # and twilio turns an edge/region setting into a different host we must not reach.
        if parts.scheme != "https" or parts.netloc.lower() != TWILIO_API_HOST:
            raise ValueError(f"refusing a request outside https://{TWILIO_API_HOST}: {url!r}")
        query = f"?{parts.query}" if parts.query else ""
        return f"{self.base_url}{parts.path}{query}"

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send the request to `base_url` and remember this thread's response.

        Sent here rather than through twilio's own request(), which keeps the response on the
        client and returns it from there: threads sharing the client (gunicorn's threads, a
        worker's effects side by side) could be handed each other's answer
        (twilio/twilio-python#580). This keeps each answer to its own thread.
        """
        self._last.response = None
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        as_json = (headers or {}).get("Content-Type") in ("application/json",
                                                          "application/scim+json")
        outgoing = {"method": method.upper(), "url": self.rewrite_url(url), "params": params,
                    "headers": headers, "auth": auth, "hooks": self.request_hooks,
                    "json" if as_json else "data": data}
        self.log_request(outgoing)
        session = self.session or requests.Session()
        prepared = session.prepare_request(requests.Request(**outgoing))
        environment = session.merge_environment_settings(prepared.url, self.proxy, None, None,
                                                         None)
        sent = session.send(prepared, allow_redirects=allow_redirects, timeout=timeout,
                            **environment)
        self.log_response(sent.status_code, sent)
        response = Response(int(sent.status_code), sent.text, sent.headers)
        self._last.response = response
        return response

    def last_response(self) -> Response | None:
        """Return the response to this thread's most recent request, if it got one."""
        return getattr(self._last, "response", None)


def build_client(
    account_sid: str,
    auth_token: str,
    api_base_url: str = TWILIO_API_BASE_URL,
    http_client: TwilioHttpClient | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Client:
    """Build the Twilio REST client; a given `http_client` overrides base URL and timeout."""
    if not account_sid or not auth_token:
        # twilio would quietly fall back to TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN from os.environ.
        raise ValueError("account_sid and auth_token are required")
    client = Client(
        account_sid,
        auth_token,
        http_client=http_client or BaseUrlHttpClient(api_base_url, timeout=timeout),
    )
    # twilio reads TWILIO_EDGE / TWILIO_REGION from os.environ (even when given environment={})
    # and rewrites the host from them; settings come from the caller, never from here.
    client.edge = None
    client.region = None
    return client


def dial_into_conference(
    client: Client,
    *,
    to: str,
    from_: str,
    join_url: str,
    status_callback: str,
    timeout_seconds: int,
    machine_detection: str | None = None,
) -> str:
    """Place a call whose TwiML at `join_url` joins a conference; return the call SID.

    With `machine_detection` ("Enable"), Twilio requests `join_url` once it knows who answered,
    with AnsweredBy (human, machine_start, fax, unknown).
    """
    amd = {} if machine_detection is None else {"machine_detection": machine_detection}
    with _twilio_errors(client):
        call = client.calls.create(
            to=to,
            from_=from_,
            url=join_url,
            method=HTTP_POST,
            status_callback=status_callback,
            status_callback_method=HTTP_POST,
            status_callback_event=list(CALL_PROGRESS_EVENTS),
            timeout=timeout_seconds,
            **amd,
        )
    return call.sid


def redirect_call(client: Client, call_sid: str, url: str) -> None:
    """Send a live call to new TwiML at `url`."""
    with _twilio_errors(client):
        client.calls(call_sid).update(url=url, method=HTTP_POST)


def end_call(client: Client, call_sid: str) -> None:
    """Hang up a call."""
    with _twilio_errors(client):
        client.calls(call_sid).update(status=CALL_STATUS_COMPLETED)


def cancel_call(client: Client, call_sid: str) -> None:
    """Stop a call that is still ringing (Twilio only cancels queued or ringing calls)."""
    with _twilio_errors(client):
        client.calls(call_sid).update(status=CALL_STATUS_CANCELED)


def announce_to_participant(
    client: Client, conference_sid: str, call_sid: str, announce_url: str
) -> None:
    """Play the TwiML at `announce_url` to one conference participant."""
    with _twilio_errors(client):
        client.conferences(conference_sid).participants(call_sid).update(
            announce_url=announce_url, announce_method=HTTP_POST
        )


def add_supervisor(
    client: Client,
    conference_sid: str,
    *,
    to: str,
    from_: str,
    muted: bool,
    coaching: bool,
    call_sid_to_coach: str | None,
    timeout_seconds: int,
    status_callback: str,
) -> str:
    """Dial a supervisor into a conference (listen: muted; coach: heard by one call); their SID.

    `status_callback` hears when their leg ends (answered or not).
    """
    with _twilio_errors(client):
        participant = client.conferences(conference_sid).participants.create(
            from_=from_,
            to=to,
            status_callback=status_callback,
            status_callback_method=HTTP_POST,
            status_callback_event=[CALL_STATUS_COMPLETED],
            muted=muted,
            coaching=coaching,
            call_sid_to_coach=call_sid_to_coach or values.unset,
            # A supervisor comes and goes unannounced, and never ends the caller's conference.
            beep="false",
            start_conference_on_enter=False,
            end_conference_on_exit=False,
            timeout=timeout_seconds,
        )
    return participant.call_sid


def update_supervisor(
    client: Client,
    conference_sid: str,
    call_sid: str,
    *,
    muted: bool,
    coaching: bool,
    call_sid_to_coach: str | None,
) -> None:
    """Switch a supervisor in a conference between listening, coaching and the conversation."""
    with _twilio_errors(client):
        client.conferences(conference_sid).participants(call_sid).update(
            muted=muted,
            coaching=coaching,
            call_sid_to_coach=call_sid_to_coach or values.unset,
        )


def delete_recording(client: Client, recording_sid: str) -> bool:
    """Delete a recording at Twilio; False when Twilio no longer has it (404)."""
    try:
        with _twilio_errors(client):
            client.recordings(recording_sid).delete()
    except TwilioRefused as refused:
        if refused.status == 404:
            return False
        raise
    return True


@contextmanager
def _twilio_errors(client: Client) -> Iterator[None]:
    """Translate twilio and requests exceptions into TwilioRefused / TwilioUnavailable."""
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        status = int(exc.status)
        if status >= 500:
            raise TwilioUnavailable(f"Twilio answered {status}", status=status) from exc
        body = _last_body(client, status)
        fallback = getattr(exc, "msg", None) or getattr(exc, "detail", None) or str(exc)
        # With no Twilio error code in the body, twilio puts the HTTP status in `code`.
        code = exc.code if exc.code != status else None
        raise TwilioRefused(status, _message_from_body(body) or fallback, body, code) from exc
    except requests.RequestException as exc:
        raise TwilioUnavailable(f"Twilio unreachable: {exc}") from exc


def _last_body(client: Client, status: int) -> str:
    """Return the body of the response that raised, if the HTTP client kept it."""
    http = client.http_client
    response = http.last_response() if isinstance(http, BaseUrlHttpClient) else None
    if response is None or response.status_code != status:
        return ""
    return response.text


def _message_from_body(body: str) -> str:
    """Return the human-readable error text of a Twilio (or RFC 7807 problem) JSON body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    if payload.get("message"):
        return str(payload["message"])
    # A problem+json body (what Prism sends for a request that breaks the spec) puts the
    # per-field reasons in a list beside a generic `detail`.
    reasons = [
        str(item.get("message") or item.get("detail"))
        for item in payload.get("validation") or payload.get("errors") or []
        if isinstance(item, dict) and (item.get("message") or item.get("detail"))
    ]
    return "; ".join(reasons) or str(payload.get("detail") or payload.get("title") or "")
