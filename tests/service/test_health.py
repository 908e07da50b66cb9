"""/readyz for a load balancer: ready only with the database up and migrated and Redis up."""

import pytest
from sqlalchemy import inspect

from config.settings import EventSpool
from service.app import create_app
from store.circuit import CLOSED, FAILURES_TO_OPEN, OPEN
from tests.support.log_capture import captured_log
from usecases.health import redis_down_message

NOT_MIGRATED = ("The database schema is not the one this version of callflow expects "
                "(run: callflow db upgrade).")
DATABASE_DOWN = "The database cannot be reached."
REDIS_DOWN_DISK_SPOOL = ("Redis cannot be reached. Calls are still answered, using the register "
                         "in the database, and call events wait on this server's disk until "
                         "Redis is back.")
REDIS_DOWN_DATABASE_SPOOL = ("Redis cannot be reached. Calls are still answered, using the "
                             "register in the database, and call events wait in the database "
                             "until Redis is back.")


def readyz(services):
    """GET /readyz without signing in."""
    return create_app(services=services).test_client().get("/readyz")


def test_ready_on_a_migrated_database_with_redis_up(services):
    response = readyz(services)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}
    assert response.headers["Cache-Control"] == "no-store"


def test_not_ready_while_the_database_is_behind_its_migrations(tmp_path, settings,
                                                               more_services):
    empty = more_services(settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'new.db'}"))
    response = readyz(empty)
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "reasons": [NOT_MIGRATED]}
    assert response.headers["Cache-Control"] == "no-store"
    engine = empty.call_path_sessions.kw["bind"]
    assert inspect(engine).get_table_names() == [], "the probe creates nothing"


def test_not_ready_while_the_database_cannot_be_reached(tmp_path, settings, more_services):
    away = more_services(settings.with_overrides(
        database_url="postgresql://nobody@127.0.0.1:1/none"))
    response = readyz(away)
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "reasons": [DATABASE_DOWN]}
    assert "127.0.0.1" not in response.get_data(as_text=True)


@pytest.mark.parametrize(("spool", "reason"), [
    (EventSpool.DISK, REDIS_DOWN_DISK_SPOOL),
    (EventSpool.DATABASE, REDIS_DOWN_DATABASE_SPOOL),
])
def test_not_ready_while_redis_is_unreachable_naming_where_events_wait(
        tmp_path, settings, more_services, spool, reason):
    down = more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v", event_spool=spool))
    response = readyz(down)
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "reasons": [reason]}
    assert "redis://" not in response.get_data(as_text=True)
    liveness = create_app(services=down).test_client().get("/healthz")
    assert liveness.status_code == 200
    assert liveness.get_json() == {"status": "degraded", "reasons": [reason]}


@pytest.mark.parametrize(("database", "reason"), [
    ("sqlite:///callflow.db", REDIS_DOWN_DISK_SPOOL),
    ("postgresql://postgres@127.0.0.1:5432/test", REDIS_DOWN_DATABASE_SPOOL),
])
def test_the_automatic_spool_follows_the_database(settings, database, reason):
    chosen = settings.with_overrides(event_spool=EventSpool.AUTO, database_url=database)
    assert redis_down_message(chosen.spools_to_database) == reason


def test_each_probe_counts_as_one_failed_request_to_the_circuit_breaker(tmp_path, settings,
                                                                        more_services):
    down = more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v"))
    client = create_app(services=down).test_client()
    for _ in range(FAILURES_TO_OPEN - 1):
        assert client.get("/readyz").status_code == 503
    assert down.redis_circuit.state == CLOSED
    assert client.get("/readyz").status_code == 503
    assert down.redis_circuit.state == OPEN


def test_a_probe_that_finds_all_well_writes_nothing_to_the_log(services):
    client = create_app(services=services).test_client()
    client.get("/readyz")  # the first reads the migrations directory, once per process
    with captured_log("text") as log:
        for _ in range(3):
            assert client.get("/readyz").status_code == 200
        assert log.lines() == []
