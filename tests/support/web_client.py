"""Signing in through the real form: the one way every web test does it.

Browser tests drive Chromium and sign in with `tests.browser.conftest.sign_in_browser` instead.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from console.sessions import COOKIE_NAME
from tests.conftest import TEST_PASSWORD


def sign_in(client: FlaskClient, email: str, password: str = TEST_PASSWORD,
            **form: str) -> TestResponse:
    """Post the sign-in form as a browser would and return the answer, unchecked."""
    return client.post("/signin", data={"email": email, "password": password, **form})


def client_signed_in_as(app: Flask, email: str) -> FlaskClient:
    """A new client of the app signed in as `email`; the test fails unless sign-in succeeds."""
    client = app.test_client()
    response = sign_in(client, email)
    # A refusal answers 401 or 429; the cookie shows that a session really started.
    assert response.status_code == 303, response.data
    assert client.get_cookie(COOKIE_NAME) is not None, "signed in without a session cookie"
    return client
