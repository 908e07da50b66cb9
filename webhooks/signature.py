"""Checks that a webhook really came from Twilio, before anything else reads it."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable
from functools import wraps
from urllib.parse import unquote

from flask import abort, current_app, g, request
from twilio.request_validator import RequestValidator, get_signature_algorithm
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from usecases.bootstrap import services_of
from webhooks.twilio_params import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER

MAX_WEBHOOK_BYTES = 16 * 1024
_DIGESTS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}
_validators: dict[str, RequestValidator] = {}

Pairs = list[tuple[str, str]]


def signed_url() -> str:
    """The URL Twilio signed: our public base URL, the path, and the raw query string.

    Flask's request.url is rebuilt from the proxy's view and re-encodes the query, so it
    breaks behind a load balancer and on escaped query strings.
    """
    base = services_of(current_app).settings.public_base_url
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def parse_form(body: bytes) -> tuple[Pairs, bool]:
    """(name, value) pairs of a form body, and whether it was valid UTF-8.

    What `parse_qsl(keep_blank_values=True)` returns, in a fraction of its time: most of
    Twilio's values need no unescaping. Undecodable bytes become U+FFFD, so that the signature
    can still be checked before the body is refused.
    """
    try:
        return _pairs(body.decode("utf-8"), "strict"), True
    except UnicodeDecodeError:
        return _pairs(body.decode("utf-8", errors="replace"), "replace"), False


def _pairs(text: str, errors: str) -> Pairs:
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            if "%" in field or "+" in field:
                name, value = _unescape(name, errors), _unescape(value, errors)
            pairs.append((name, value))
    return pairs


def _unescape(text: str, errors: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors=errors) if "%" in text else text


def twilio_form() -> dict[str, str]:
    """The signed webhook's parameters (the first value of each), parsed once by twilio_signed."""
    return g.twilio_form


def signature_matches(token: str, url: str, pairs: Iterable[tuple[str, str]], signature: str,
                      algorithm: str = "HMAC_SHA1") -> bool:
    """Whether `signature` is Twilio's for this URL and these parameters.

    Twilio signs the URL as configured, so one HMAC over the string it signs (the URL, then
    each name and value, sorted) settles a genuine request. twilio's own validator, which also
    tries the URL with and without its port, is the slower second try.
    """
    digest = _DIGESTS.get(algorithm.upper())
    if digest is not None:
        signed = url + "".join(name + value for name, value in sorted(set(pairs)))
        expected = base64.b64encode(hmac.digest(token.encode(), signed.encode(), digest))
        if hmac.compare_digest(expected, signature.encode()):
            return True
    validator = _validators.get(token) or _validators.setdefault(token, RequestValidator(token))
    return validator.validate(url, MultiDict(pairs), signature, algorithm)


class Refused(Exception):
    """A webhook refused before anything reads it: the HTTP status and why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def verified_form(token: str, url: str, body: bytes, signature: str,
                  signature_settings: str | None = None) -> dict[str, str]:
    """The parameters (the first value of each) of a body Twilio signed for url.

    Raises Refused: 403 for a missing or wrong signature, then 400 for a body that is not UTF-8.
    """
    if not signature:
        raise Refused(403, "missing X-Twilio-Signature")
    pairs, utf8 = parse_form(body)
    if not signature_matches(token, url, pairs, signature,
                             get_signature_algorithm(signature_settings)):
        raise Refused(403, "the X-Twilio-Signature does not match")
    if not utf8:
        raise Refused(400, "the request body is not valid UTF-8")
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def twilio_signed(view):
    """Refuse (403) any request whose X-Twilio-Signature does not match; write nothing."""

    @wraps(view)
    def checked(*args, **kwargs):
        if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
            abort(413)
        body = request.get_data() if request.method == "POST" else b""
        try:
            g.twilio_form = verified_form(
                services_of(current_app).settings.twilio_auth_token, signed_url(), body,
                request.headers.get(SIGNATURE_HEADER, ""),
                request.headers.get(SIGNATURE_SETTINGS_HEADER))
        except Refused as refused:
            if refused.status == 400:
                raise BadRequest(refused.message) from None
            abort(refused.status)
        return view(*args, **kwargs)

    return checked
