"""Readiness for a load balancer: the database answers and is migrated, and Redis answers."""

from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory
from redis import RedisError
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from store.migrate import MIGRATIONS
from usecases.bootstrap import Services

VERSION_TABLE = "alembic_version"
DATABASE_DOWN = "The database cannot be reached."
SCHEMA_BEHIND = ("The database schema is not the one this version of callflow expects "
                 "(run: callflow db upgrade).")


@cache
def migration_heads() -> frozenset[str]:
    """The newest revisions in store/migrations, read once per process."""
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def database_problems(engine: Engine) -> list[str]:
    """Why the database cannot serve now, in plain words; empty when it can."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            # Read alembic's table directly: its MigrationContext logs two lines at INFO on each
            # use, and a load balancer probes every few seconds.
            current = frozenset(
                connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            ) if inspect(connection).has_table(VERSION_TABLE) else frozenset()
    except (SQLAlchemyError, OSError):
        return [DATABASE_DOWN]
    if current != migration_heads():
        return [SCHEMA_BEHIND]
    return []


def readiness_problems(services: Services) -> list[str]:
    """Everything that keeps this process from taking traffic; empty when ready."""
    # The call path's engine: every wait on it is bounded, so the probe answers quickly.
    engine = services.call_path_sessions.kw["bind"]
    return database_problems(engine) + redis_problems(services)


REDIS_DOWN = ("Redis cannot be reached. Calls are still answered, using the register in the "
              "database, and call events wait {where} until Redis is back.")
SPOOL_IN_DATABASE = "in the database"
SPOOL_ON_DISK = "on this server's disk"


def redis_down_message(spools_to_database: bool) -> str:
    """The plain reason given while Redis is away, naming where call events wait meanwhile."""
    return REDIS_DOWN.format(where=SPOOL_IN_DATABASE if spools_to_database else SPOOL_ON_DISK)


def redis_problems(services: Services) -> list[str]:
    """Why Redis cannot be used now, in plain words; empty when it answers."""
    try:
        services.redis.ping()  # refused at once while the circuit breaker is open
    except (RedisError, OSError):
        return [redis_down_message(services.settings.spools_to_database)]
    return []
