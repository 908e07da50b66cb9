"""GET /metrics: only with the token; counts webhooks and decisions as they happen, and reads the
pipeline's backlogs from Redis and the database when scraped."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from config.metrics import REDIS_CIRCUIT, record_circuit_state
from config.settings import SettingsError, load_settings
from service.app import create_app
from service.metrics import token_matches
from store.agent_pool import AgentPool, Availability
from store.call_events import STREAM_KEY
from store.circuit import Circuit
from store.db import transaction
from store.dead_letters import DeadLetters
from store.models import SpooledBatch
from tests.conftest import NOW

BASE = "https://callflow.test"
TWILIO_TOKEN = "test-auth-token"
METRICS_TOKEN = "m" * 32
INCOMING = "/twilio/voice/incoming"
STATUS = "/twilio/voice/status"


def post_signed(client, path: str, params: dict[str, str]):
    """POST a webhook signed as Twilio signs it."""
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def incoming(n: int) -> dict[str, str]:
    """An incoming call from a fictional (Ofcom drama) number."""
    return {"CallSid": f"CA{n:032x}", "From": f"+44770090{n:04d}", "To": "+441632960000",
            "CallStatus": "ringing"}


@pytest.fixture
def metered(services, more_services):
    """Services like the test's, with a metrics token, and a client of their app."""
    built = more_services(services.settings.with_overrides(metrics_token=METRICS_TOKEN))
    return built, create_app(services=built).test_client()


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """Every sample /metrics gives, by name and labels."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it has not been counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_off_without_a_token(services):
    client = create_app(services=services).test_client()
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", f"Bearer {METRICS_TOKEN[:-1]}", f"Bearer {METRICS_TOKEN}x",
    f"Basic {METRICS_TOKEN}", METRICS_TOKEN,
])
def test_metrics_are_refused_without_the_right_token(metered, authorization):
    _services, client = metered
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.get_data(as_text=True) == (
        "the metrics need the token (Authorization: Bearer ...)\n")
    assert "callflow_" not in response.get_data(as_text=True)


@pytest.mark.parametrize(("expected", "header", "matches"), [
    ("s3cret-token", "Bearer s3cret-token", True),
    ("s3cret-token", "bearer  s3cret-token ", True),
    ("s3cret-token", "Bearer s3cret-tokem", False),
    ("", "Bearer ", False),
    ("", "", False),
])
def test_the_token_is_compared_whole(expected, header, matches):
    assert token_matches(expected, header) is matches


def test_a_short_metrics_token_is_refused_at_start_up():
    with pytest.raises(SettingsError) as raised:
        load_settings({"CALLFLOW_ENV": "test", "SECRET_KEY": "k",
                       "CALLFLOW_METRICS_TOKEN": "short"})
    assert str(raised.value) == ("CALLFLOW_METRICS_TOKEN is 5 characters long: use at least 24, "
                                 "or leave it empty to turn /metrics off")


def test_webhooks_and_decisions_are_counted_by_endpoint_status_and_outcome(metered, clock):
    clock.set(NOW)  # a Tuesday, 10:00 in London: the centre is open
    _services, client = metered
    before = scrape(client)
    for n in range(3):
        assert post_signed(client, INCOMING, incoming(n)).status_code == 200
    assert client.post(INCOMING, data=incoming(9)).status_code == 403  # unsigned
    assert post_signed(client, STATUS, {"CallSid": f"CA{0:032x}", "CallStatus": "completed",
                                        "CallDuration": "5"}).status_code == 204
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("callflow_webhook_requests_total", endpoint=INCOMING, status="200") == 3
    assert grew("callflow_webhook_requests_total", endpoint=INCOMING, status="403") == 1
    assert grew("callflow_webhook_requests_total", endpoint=STATUS, status="204") == 1
    assert grew("callflow_webhook_seconds_count", endpoint=INCOMING) == 4
    assert grew("callflow_webhook_seconds_count", endpoint=STATUS) == 1
    assert grew("callflow_decisions_total", outcome="centre") == 3
    assert value(after, "callflow_redis_circuit", state="closed") == 1
    assert value(after, "callflow_redis_circuit", state="open") == 0


def test_the_pipeline_is_read_from_redis_and_the_database_when_scraped(metered, tmp_path):
    s, client = metered
    seconds, _micros = s.redis.time()
    # An entry added five seconds ago that the pump has not taken yet: the call log lags 5 s.
    s.redis.xadd(STREAM_KEY, {"sid": "CA" + "0" * 32}, id=f"{(seconds - 5) * 1000}-0")
    s.redis.xadd(STREAM_KEY, {"sid": "CA" + "1" * 32})
    pool = AgentPool(s.redis)
    for staff_id, availability in ((1, Availability.AVAILABLE), (2, Availability.AVAILABLE),
                                   (3, Availability.BUSY)):
        pool.set_availability(staff_id, availability)
    s.queue.enqueue("workers.pump.pump_events")
    with transaction(s.sessions) as session:
        DeadLetters(session).set_aside("1-0", {"sid": "CA" + "2" * 32}, "CA" + "2" * 32,
                                       ValueError("bad"), NOW)
        session.add(SpooledBatch(call_sid="CA" + "3" * 32, fields="{}", spooled_at=NOW,
                                 host="web-1"))
    spool = s.settings.var_dir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "events-1.jsonl").write_text('{"sid": "a"}\n{"sid": "b"}\n\n')
    (spool / "events-2.jsonl").write_text('{"sid": "c"}\n')

    samples = scrape(client)

    assert value(samples, "callflow_call_event_stream_length") == 2
    assert 5.0 <= value(samples, "callflow_call_log_lag_seconds") < 6.0
    assert {a.value: value(samples, "callflow_agents", availability=a.value)
            for a in Availability} == {"available": 2, "busy": 1, "away": 0, "wrap-up": 0,
                                       "recovering": 0}
    assert {state: value(samples, "callflow_jobs", state=state)
            for state in ("queued", "started", "failed", "scheduled")} == {
        "queued": 1, "started": 0, "failed": 0, "scheduled": 0}
    assert value(samples, "callflow_dead_letters") == 1
    assert value(samples, "callflow_spooled_batches_database") == 1
    assert value(samples, "callflow_spooled_batches_disk") == 3
    assert {source: value(samples, "callflow_metrics_source_up", source=source)
            for source in ("redis", "database", "disk")} == {
        "redis": 1, "database": 1, "disk": 1}


def test_an_empty_pipeline_has_no_lag(metered):
    samples = scrape(metered[1])
    assert value(samples, "callflow_call_event_stream_length") == 0
    assert ("callflow_call_log_lag_seconds", frozenset()) in samples
    assert value(samples, "callflow_call_log_lag_seconds") == 0


def test_a_scrape_while_redis_is_away_still_answers_and_says_what_it_could_not_read(
        services, more_services, tmp_path):
    away = more_services(services.settings.with_overrides(
        metrics_token=METRICS_TOKEN, redis_url="redis://127.0.0.1:1/0", var_dir=tmp_path / "v"))
    samples = scrape(create_app(services=away).test_client())
    assert value(samples, "callflow_metrics_source_up", source="redis") == 0
    assert value(samples, "callflow_metrics_source_up", source="database") == 1
    assert ("callflow_call_event_stream_length", frozenset()) not in samples
    assert value(samples, "callflow_dead_letters") == 0


def test_no_phone_number_or_call_reference_is_a_label(metered, clock):
    clock.set(NOW)
    _services, client = metered
    post_signed(client, INCOMING, incoming(7))
    text = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).get_data(
        as_text=True)
    assert "callflow_decisions_total" in text
    assert "+44770090" not in text and f"CA{7:032x}" not in text


def test_the_breaker_reports_each_change_of_state_once_and_the_gauge_follows():
    changes: list[str] = []
    circuit = Circuit(failures_to_open=2, retry_after=1.0, clock=lambda: 0.0,
                      on_change=changes.append)
    circuit.failed()
    assert changes == []
    circuit.failed()
    circuit.failed()
    assert changes == ["open"]
    circuit.succeeded()
    circuit.succeeded()
    assert changes == ["open", "closed"]
    record_circuit_state(changes[0])
    assert [REDIS_CIRCUIT.labels(state)._value.get() for state in ("closed", "open")] == [0, 1]
    record_circuit_state(changes[1])
    assert [REDIS_CIRCUIT.labels(state)._value.get() for state in ("closed", "open")] == [1, 0]
