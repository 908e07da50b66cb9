"""Fixtures: a real database (SQLite, or PostgreSQL via DATABASE_URL) and a real Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from config.settings import load_settings
from service.app import create_app
from store import migrate
from store.db import make_engine, transaction
from store.embedded_redis import EmbeddedRedis
from store.models import Base
from usecases.bootstrap import Services
from usecases.staff import add_staff, hash_password

pytest_plugins = ["tests.support.twilio_fixtures"]

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday
TODAY = date(2026, 12, 1)
TEST_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """REDIS_URL when given (CI's server), else a real embedded redis-server."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """A migrated database: a fresh PostgreSQL schema when DATABASE_URL is given, else SQLite."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        path = tmp_path_factory.mktemp("db") / "callflow.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(make_engine(url))
        yield url
        return
    schema = f"test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(make_engine(url).url).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    scoped_url = scoped.render_as_string(hide_password=False)
    migrator = make_engine(scoped_url)
    migrate.upgrade(migrator)
    migrator.dispose()  # a pooled psycopg connection left to the GC is a ResourceWarning
    yield scoped_url
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str):
    """Test settings: a fixed database and Redis, no production secrets needed."""
    return load_settings(
        {
            "CALLFLOW_ENV": "test",
            "CALLFLOW_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret-key",
            "TWILIO_AUTH_TOKEN": "test-auth-token",
            "PUBLIC_BASE_URL": "https://callflow.test",
        }
    )


@pytest.fixture
def services(settings) -> Iterator[Services]:
    """Services on a clean database and an empty Redis."""
    built = Services(settings)
    with built.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    redis.Redis.from_url(built.redis_url).flushdb()
    yield built
    built.close()


@pytest.fixture
def more_services() -> Iterator:
    """Build further Services (other settings, a doomed Redis); each is closed after the test."""
    built: list[Services] = []

    def build(settings, **kwargs) -> Services:
        built.append(Services(settings, **kwargs))
        return built[-1]

    yield build
    for each in built:
        each.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One real Argon2id hash of TEST_PASSWORD, computed once: each costs 64 MiB and ~100 ms."""
    return hash_password(TEST_PASSWORD)


@pytest.fixture
def staff(services, password_hash):
    """A manager, a supervisor and two agents, all with TEST_PASSWORD; returns them by role name."""
    people = {}
    with transaction(services.sessions) as session:
        for key, email, role, identity in (
            ("manager", "manager@example.org", "manager", "morgan"),
            ("supervisor", "supervisor@example.org", "supervisor", "sam"),
            ("agent", "alex@example.org", "agent", "alex"),
            ("agent2", "jo@example.org", "agent", "jo"),
        ):
            member = add_staff(
                session,
                email=email,
                name=key.title(),
                role=role,
                now=NOW,
                client_identity=identity,
            )
            # The session's one hash: Argon2 costs ~100 ms a time, and this runs for every test.
            member.password_hash = password_hash
            people[key] = member
    return people


@pytest.fixture
def app(services, staff, clock) -> Flask:
    """The app on the test's services, with the staff in place and the clock frozen at NOW."""
    return create_app(services=services)


@pytest.fixture
def client(app) -> FlaskClient:
    """A browser-like client of the app, not signed in."""
    return app.test_client()


class FrozenClock:
    """A clock the tests move by hand; every module reads time through config.clock."""

    def __init__(self, now: datetime):
        self.now = now

    def set(self, now: datetime) -> None:
        """Jump to a given aware datetime."""
        self.now = now


@pytest.fixture
def clock(monkeypatch) -> FrozenClock:
    """Freeze config.clock.now_utc at NOW (Tuesday 1 December 2026, 10:00 UTC)."""
    frozen = FrozenClock(NOW)
    monkeypatch.setattr("config.clock.now_utc", lambda: frozen.now)
    return frozen
