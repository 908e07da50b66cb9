"""The whole-call tests' driver: the simulator playing Twilio against the test's services."""

from __future__ import annotations

import pytest

from tests.calls.test_scenarios import LONDON_TODAY, OPEN
from tests.support.call_driver import CallDriver


@pytest.fixture
def driver(services, staff, twilio_rest, clock):
    """A driver on the test's services, the routing cache built, the clock at OPEN."""
    clock.set(OPEN)
    services.register.rebuild_cache(LONDON_TODAY)
    running = CallDriver(services, twilio_rest, clock)
    yield running
    running.close()
