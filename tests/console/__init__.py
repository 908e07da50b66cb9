"""Tests of sign-in, sessions, CSRF, roles and the console JSON API; helpers they share."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from console.sessions import COOKIE_NAME
from tests.conftest import TEST_PASSWORD


def sign_in(client: FlaskClient, email: str, password: str = TEST_PASSWORD,
            **form: str) -> TestResponse:
    """Post the sign-in form as a browser would."""
    return client.post("/signin", data={"email": email, "password": password, **form})


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
