"""CSRF tokens, security headers, and the sign-in throttle."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from flask import Flask, Response, g, request, session

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' wss://*.twilio.com https://*.twilio.com; media-src 'self' https: ; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"

# Sign-in throttle: failures counted per email and per client IP over a 15-minute window.
THROTTLE_WINDOW_SECONDS = 15 * 60
EMAIL_DELAY_AFTER = 5
EMAIL_REFUSE_AFTER = 10
# A contact centre signs in from one public address: a higher bar per IP, so one person
# mistyping cannot lock out the whole floor, while a password spray is still stopped.
IP_DELAY_AFTER = 20
IP_REFUSE_AFTER = 40
MAX_DELAY_SECONDS = 5.0
THROTTLE_KEY = "callflow:signin:failures:{kind}:{digest}"
TOO_MANY_ATTEMPTS = "Too many failed sign-ins. Please wait 15 minutes and try again."

# Tests replace this to keep the delay observable but instant.
sleep = time.sleep


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status


def csrf_token() -> str:
    """The CSRF token for this browser: its session's, or a pre-sign-in one."""
    live = getattr(g, "callflow_session", None)
    if live is not None:
        return live.csrf
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def submitted_csrf_token() -> str:
    """The token a request carries, in the X-CSRF-Token header or the csrf_token form field."""
    header = request.headers.get(CSRF_HEADER, "")
    if header:
        return header
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get(CSRF_FIELD, "")
    return ""


def check_csrf(expected: str) -> None:
    """Raise CsrfRefused unless an unsafe request carries the expected token."""
    if request.method not in UNSAFE_METHODS:
        return
    given = submitted_csrf_token()
    if not given:
        raise CsrfRefused("missing CSRF token: reload the page and try again", 400)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused("CSRF token is not right: reload the page and try again", 403)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(public_base_url: str) -> None:
    """Refuse a cross-site unsafe request that a browser marked with another Origin.

    Browsers send Origin on every cross-site POST, so this also stops login CSRF on /signin,
    which has no session token yet. Clients that send no Origin (curl, Flex) pass through.
    """
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if not origin:
        return
    allowed = {_origin(public_base_url), _origin(request.host_url)}
    if origin.lower() not in allowed:
        raise CsrfRefused(f"cross-site request from {origin} refused", 403)


def add_security_headers(response: Response, public_base_url: str) -> Response:
    """Set CSP, nosniff, Referrer-Policy, frame options and (over https) HSTS."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if public_base_url.startswith("https://"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    if getattr(g, "staff_signed_in", False):
        # Pages and answers about callers must not linger in shared caches or history.
        headers.setdefault("Cache-Control", "no-store")
    return response


def configure_cookies(app: Flask, secure: bool) -> None:
    """Flask's own cookie (flash messages, the pre-sign-in CSRF token) gets the same flags."""
    app.config.update(
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="callflow_flash",
    )


@dataclass(frozen=True)
class ThrottleVerdict:
    """What the throttle says about a sign-in attempt: wait this long, or refuse (429)."""

    delay_seconds: float
    refused: bool


class SignInThrottle:
    """Counts failed sign-ins per email and per client IP in Redis."""

    def __init__(self, client: redis.Redis):
        self.client = client

    @staticmethod
    def _key(kind: str, value: str) -> str:
        digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()
        return THROTTLE_KEY.format(kind=kind, digest=digest)

    def failures(self, email: str, ip: str) -> tuple[int, int]:
        """Failures in the window for this email and this IP."""
        by_email, by_ip = self.client.mget(self._key("email", email), self._key("ip", ip))
        return int(by_email or 0), int(by_ip or 0)

    def verdict(self, email: str, ip: str) -> ThrottleVerdict:
        """Whether to slow down or refuse this attempt, before checking the password."""
        by_email, by_ip = self.failures(email, ip)
        if by_email >= EMAIL_REFUSE_AFTER or by_ip >= IP_REFUSE_AFTER:
            return ThrottleVerdict(0.0, True)
        over = max(by_email - EMAIL_DELAY_AFTER + 1, by_ip - IP_DELAY_AFTER + 1, 0)
        return ThrottleVerdict(min(float(over), MAX_DELAY_SECONDS), False)

    def record_failure(self, email: str, ip: str) -> None:
        """Count one failed attempt against the email and the IP."""
        pipe = self.client.pipeline(transaction=True)
        for key in (self._key("email", email), self._key("ip", ip)):
            # The window starts at the first failure (SET NX; INCR keeps the TTL).
            pipe.set(key, 0, nx=True, ex=THROTTLE_WINDOW_SECONDS)
            pipe.incr(key)
        pipe.execute()

    def record_success(self, email: str) -> None:
        """A successful sign-in clears the email's count (the IP's stays)."""
        self.client.delete(self._key("email", email))
