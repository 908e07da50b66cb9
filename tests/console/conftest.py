"""Fixtures for the console and its API: the app on the test's services, and a client."""

import pytest

from service.app import create_app


@pytest.fixture
def app(services, staff, clock):
    """The app, with the staff in place and the clock frozen at NOW."""
    return create_app(services=services)


@pytest.fixture
def client(app):
    """A browser-like client without a session."""
    return app.test_client()
