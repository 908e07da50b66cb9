"""/healthz says the process is alive whatever its dependencies do; /readyz wants the schema at
the migrations' head; a call's log records name its SID and never the caller's number."""

from __future__ import annotations

from sqlalchemy import text
from twilio.request_validator import RequestValidator

from service.app import create_app
from store import migrate
from store.db import make_engine
from tests.conftest import NOW
from tests.support.log_capture import captured_log

NOT_MIGRATED = ("The database schema is not the one this version of callflow expects "
                "(run: callflow db upgrade).")
SID = "CA" + "5" * 32
NUMBER = "+447700900456"


def test_healthz_answers_ok_with_the_database_unreachable(tmp_path, settings, more_services):
    away = more_services(settings.with_overrides(
        database_url="postgresql://nobody@127.0.0.1:1/none", var_dir=tmp_path / "v"))
    client = create_app(services=away).test_client()
    assert client.get("/readyz").status_code == 503
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_answers_200_saying_degraded_with_redis_unreachable(tmp_path, settings,
                                                                     more_services):
    down = more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v"))
    response = create_app(services=down).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"


def test_readyz_refuses_a_database_left_at_an_older_revision(tmp_path, settings, more_services):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    behind = more_services(settings.with_overrides(database_url=url))
    client = create_app(services=behind).test_client()
    assert client.get("/readyz").status_code == 200
    with engine.begin() as connection:  # as if the code were deployed before `db upgrade`
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    engine.dispose()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "reasons": [NOT_MIGRATED]}


def test_an_incoming_calls_log_records_name_its_sid_and_not_the_number(tmp_path, settings,
                                                                       more_services, clock):
    clock.set(NOW)
    down = more_services(settings.with_overrides(redis_url="redis://127.0.0.1:1/0",
                                                 var_dir=tmp_path / "v"))
    client = create_app(services=down).test_client()
    params = {"CallSid": SID, "From": NUMBER, "To": "+441632960000", "CallStatus": "ringing"}
    path = "/twilio/voice/incoming"
    signature = RequestValidator("test-auth-token").compute_signature(
        "https://callflow.test" + path, params)
    with captured_log("json") as log:
        response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    records = log.records()
    assert records, "Redis being away is logged"
    assert {record["call_sid"] for record in records} == {SID}
    assert all(NUMBER not in line and "7700900456" not in line for line in log.lines())
