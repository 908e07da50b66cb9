"""Fixtures for the fault tests: a redis-server each test may kill or freeze, and settings on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.processes import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, stopped at the end whatever the test did to it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def fault_env(tmp_path: Path, database_url: str, redis_server: RedisServer) -> dict[str, str]:
    """Settings, as environment variables, for service processes on the test's own Redis."""
    return {
        "CALLFLOW_ENV": "test",
        "CALLFLOW_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "test-secret-key",
        "TWILIO_AUTH_TOKEN": "test-auth-token",
        "PUBLIC_BASE_URL": "https://callflow.test",
        "CALLFLOW_OPENING_HOURS": "Mon-Sun 00:00-24:00",
    }
