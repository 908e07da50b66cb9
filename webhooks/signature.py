"""Checks that a webhook really came from Twilio, before anything else reads it."""

from __future__ import annotations

from functools import wraps
from hmac import compare_digest
from urllib.parse import parse_qsl

from flask import abort, current_app, g, request
from twilio.request_validator import RequestValidator, get_signature_algorithm
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from service.app import services_of
from webhooks.twilio_params import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER

MAX_WEBHOOK_BYTES = 16 * 1024
_validators: dict[str, RequestValidator] = {}


def signed_url() -> str:
    """The URL Twilio signed: our public base URL, the path, and the raw query string.

    Flask's request.url is rebuilt from the proxy's view and re-encodes the query, so it
    breaks behind a load balancer and on escaped query strings.
    """
    base = services_of(current_app).settings.public_base_url
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def _parse_form(body: bytes) -> tuple[MultiDict, bool]:
    """(params, is_utf8): undecodable bytes become U+FFFD so the signature can still be checked."""
    try:
        text = body.decode("utf-8")
        return MultiDict(parse_qsl(text, keep_blank_values=True, errors="strict")), True
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        return MultiDict(parse_qsl(text, keep_blank_values=True, errors="replace")), False


def twilio_form() -> MultiDict:
    """The signed webhook's parameters, parsed once by twilio_signed."""
    return g.twilio_form


def _signature_matches(validator: RequestValidator, url: str, params: MultiDict, signature: str,
                       algorithm: str) -> bool:
    # Twilio signs the URL as configured, so one HMAC settles a genuine request; the library's
    # validate() (which also tries the URL with and without the port) is the slower second try.
    expected = validator.compute_signature(url, params, algorithm)
    if compare_digest(expected.encode(), signature.encode()):
        return True
    return validator.validate(url, params, signature, algorithm)


def twilio_signed(view):
    """Refuse (403) any request whose X-Twilio-Signature does not match; write nothing."""

    @wraps(view)
    def checked(*args, **kwargs):
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            abort(413)
        token = services_of(current_app).settings.twilio_auth_token
        validator = _validators.get(token) or _validators.setdefault(token, RequestValidator(token))
        signature = request.headers.get(SIGNATURE_HEADER, "")
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        params, utf8 = _parse_form(request.get_data()) if request.method == "POST" else (
            MultiDict(), True)
        if not signature or not _signature_matches(validator, signed_url(), params, signature,
                                                   algorithm):
            abort(403)
        if not utf8:
            raise BadRequest("the request body is not valid UTF-8")
        g.twilio_form = params
        return view(*args, **kwargs)

    return checked
