"""Tests of sign-in, sessions, CSRF, roles and the console JSON API; helpers they share."""

from __future__ import annotations

from flask.testing import FlaskClient

from console.sessions import COOKIE_NAME
from tests.support.web_client import sign_in


def session_id(client: FlaskClient) -> str | None:
    """The session cookie the client holds, if any."""
    cookie = client.get_cookie(COOKIE_NAME)
    return cookie.value if cookie else None


def csrf_token(client: FlaskClient) -> str:
    """The signed-in session's CSRF token, as the console reads it."""
    response = client.get("/api/me")
    assert response.status_code == 200, response.data
    return response.json["csrf_token"]


def signed_in(client: FlaskClient, email: str) -> dict[str, str]:
    """Sign in and return the header that state-changing requests need."""
    response = sign_in(client, email)
    assert response.status_code == 303, response.data
    return {"X-CSRF-Token": csrf_token(client)}
