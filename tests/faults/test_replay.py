"""A hang-up during a Redis outage is replayed into the live call, not only the log (item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import load_settings
from store.agent_pool import Availability
from store.live_call import live_call
from tests.calls.test_scenarios import LONDON_TODAY, OPEN, STRANGER
from tests.faults.processes import DurableRedisServer
from tests.support.call_driver import CallDriver
from workers import pump


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedisServer]:
    """A redis-server of the test's own that keeps its data when killed."""
    server = DurableRedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def outage(tmp_path, database_url, durable_redis, services, staff, more_services, twilio_rest,
           clock):
    """Services and a call driver on the durable Redis (staff in the test database)."""
    settings = load_settings({
        "CALLFLOW_ENV": "test", "CALLFLOW_VAR_DIR": str(tmp_path / "var-outage"),
        "DATABASE_URL": database_url, "REDIS_URL": durable_redis.url,
        "SECRET_KEY": "test-secret-key", "TWILIO_AUTH_TOKEN": "test-auth-token",
        "PUBLIC_BASE_URL": "https://callflow.test", "CALLFLOW_EVENT_SPOOL": "disk",
    })
    built = more_services(settings)
    clock.set(OPEN)
    built.register.rebuild_cache(LONDON_TODAY)
    driver = CallDriver(built, twilio_rest, clock)
    yield built, driver
    driver.close()


def test_a_hang_up_spooled_during_an_outage_ends_the_live_call_and_nobody_is_rung(
        outage, durable_redis, staff):
    s, driver = outage
    alex = staff["agent"]
    call = driver.call(STRANGER)  # nobody available: the dispatcher tries again every 5 s
    assert live_call(s.worker_redis, call.sid)["state"] == "waiting"
    assert driver.calls_created() == [] and driver.scheduled()

    with driver.workers_stopped():
        durable_redis.kill()
        call.hang_up()  # Twilio's `completed` callback arrives while Redis is down
        spool = s.settings.var_dir / "spool"
        assert sorted(p.suffix for p in spool.iterdir()) == [".jsonl"], "spooled to disk"
        durable_redis.start()
        assert live_call(s.worker_redis, call.sid)["state"] == "waiting", "as before the outage"
        pump.pump_events()  # the pump replays the spool
        assert list(spool.glob("*.jsonl")) == []

    assert call.over
    assert live_call(s.worker_redis, call.sid)["state"] == "ended"
    # The replayed hang-up took the caller's timers (the dispatcher's retry, the voicemail
    # offer) off the schedule: nothing is left to ring anyone for them.
    assert driver.scheduled() == []
    driver.set_available(alex)
    driver.run_scheduled()
    assert driver.calls_created() == [], "nobody is rung for a call that has ended"
    assert driver.availability(alex) is Availability.AVAILABLE, "and nobody is left claimed"
    row, events = driver.call_log(call.sid)
    assert row.status == "completed"
    assert [e.detail["status"] for e in events if e.kind == "status"] == ["completed"]
