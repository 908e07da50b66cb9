"""Fixtures for the workspace: browsers signed in as each role (the app is tests/conftest.py's)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.support.web_client import client_signed_in_as


@pytest.fixture
def manager(app) -> FlaskClient:
    """A browser signed in as the manager."""
    return client_signed_in_as(app, "manager@example.org")


@pytest.fixture
def supervisor(app) -> FlaskClient:
    """A browser signed in as the supervisor."""
    return client_signed_in_as(app, "supervisor@example.org")


@pytest.fixture
def agent(app) -> FlaskClient:
    """A browser signed in as an agent."""
    return client_signed_in_as(app, "alex@example.org")
