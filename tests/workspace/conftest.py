"""Fixtures for the workspace: an app, and browsers signed in as each role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from tests.workspace import sign_in


@pytest.fixture
def app(services, staff, clock):
    """The app on the test's services, with the clock frozen at NOW."""
    return create_app(services=services)


@pytest.fixture
def manager(app) -> Iterator[FlaskClient]:
    """A browser signed in as the manager."""
    yield sign_in(app.test_client(), "manager@example.org")


@pytest.fixture
def supervisor(app) -> Iterator[FlaskClient]:
    """A browser signed in as the supervisor."""
    yield sign_in(app.test_client(), "supervisor@example.org")


@pytest.fixture
def agent(app) -> Iterator[FlaskClient]:
    """A browser signed in as an agent."""
    yield sign_in(app.test_client(), "alex@example.org")
