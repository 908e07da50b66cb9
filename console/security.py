"""CSRF tokens, security headers, and the sign-in throttle."""

from __future__ import annotations

import hashlib
import hmac
import secrets
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

# Sign-in throttle: password checks counted per email and per client IP over a 15-minute window.
THROTTLE_WINDOW_SECONDS = 15 * 60
EMAIL_REFUSE_AFTER = 10
# A contact centre signs in from one public address: a higher bar per IP, so one person
# mistyping cannot lock out the whole floor, while a password spray is still stopped.
IP_REFUSE_AFTER = 40
THROTTLE_KEY = "callflow:signin:failures:{kind}:{digest}"

# One atomic step: refuse if either count is at its limit (with the seconds until the later
# window ends), else count this attempt against both before its password is checked.
_RESERVE = """
local by_email = tonumber(redis.call('GET', KEYS[1]) or '0')
local by_ip = tonumber(redis.call('GET', KEYS[2]) or '0')
local wait = 0
if by_email >= tonumber(ARGV[1]) then wait = math.max(wait, redis.call('TTL', KEYS[1])) end
if by_ip >= tonumber(ARGV[2]) then wait = math.max(wait, redis.call('TTL', KEYS[2])) end
if by_email >= tonumber(ARGV[1]) or by_ip >= tonumber(ARGV[2]) then
  if wait < 1 then wait = tonumber(ARGV[3]) end
  return wait
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[3]) end
end
return 0
"""
# A successful sign-in clears the email's count and hands back the IP's slot it took.
_RELEASE = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('DECR', KEYS[2]) <= 0 then
  redis.call('DEL', KEYS[2])
end
return 0
"""


def too_many_attempts(retry_after_seconds: int) -> str:
    """The sign-in page's plain message when the throttle refuses, in whole minutes."""
    minutes = max(1, -(-retry_after_seconds // 60))
    return f"Too many attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."


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


class SignInThrottle:
    """Counts password checks per email and per client IP in Redis, atomically, never sleeping.

    Each attempt takes a slot before its password is checked, so however many arrive at once,
    at most EMAIL_REFUSE_AFTER checks run per email (and IP_REFUSE_AFTER per IP) in a window.
    """

    def __init__(self, client: redis.Redis):
        self.client = client
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _key(kind: str, value: str) -> str:
        digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()
        return THROTTLE_KEY.format(kind=kind, digest=digest)

    def _keys(self, email: str, ip: str) -> list[str]:
        return [self._key("email", email), self._key("ip", ip)]

    def failures(self, email: str, ip: str) -> tuple[int, int]:
        """Attempts counted in the window for this email and this IP."""
        by_email, by_ip = self.client.mget(self._keys(email, ip))
        return int(by_email or 0), int(by_ip or 0)

    def reserve(self, email: str, ip: str) -> int:
        """Take a slot for one password check: 0 if granted, else seconds until one frees up."""
        return int(self._reserve(keys=self._keys(email, ip), args=[
            EMAIL_REFUSE_AFTER, IP_REFUSE_AFTER, THROTTLE_WINDOW_SECONDS]))

    def record_success(self, email: str, ip: str) -> None:
        """A successful sign-in clears the email's count and gives the IP its slot back."""
        self._release(keys=self._keys(email, ip))
