"""The worker's own bookkeeping costs few Redis round trips a job: rq's heartbeat is sent in one
round trip and at most every HEARTBEAT_EVERY_SECONDS, and an unchanged state is not sent again;
the worker's registration still stays alive and a lost Redis still ends the work loop."""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import JobStatus

from service import background
from service.background import PatientWorker, RedisLost
from store.redis_client import Outage
from tests.support.round_trips import count_round_trips
from usecases.bootstrap import QUEUE_NAME

JOBS = 40


def doubled(n: int) -> int:
    """A job with no Redis work of its own."""
    return 2 * n


def test_a_busy_worker_spends_at_most_twelve_round_trips_a_job(services, monkeypatch):
    queue = Queue(QUEUE_NAME, connection=services.worker_redis)
    jobs = [queue.enqueue(doubled, n) for n in range(JOBS)]
    worker = PatientWorker([QUEUE_NAME], connection=services.worker_redis,
                           outage=Outage("test worker"))
    sent = count_round_trips(monkeypatch)
    worker.work(burst=True)
    assert [job.latest_result().return_value for job in jobs] == [2 * n for n in range(JOBS)]
    # rq 3.0 as it comes: 20 a job (three heartbeats of three commands each, sent one by one).
    assert sent[0] / JOBS <= 12, sent[0] / JOBS


def test_the_heartbeat_still_keeps_the_worker_registered(services):
    worker = PatientWorker([QUEUE_NAME], connection=services.worker_redis,
                           outage=Outage("test worker"))
    worker.register_birth()
    services.worker_redis.expire(worker.key, 5)
    worker.heartbeat()
    ttl = services.worker_redis.ttl(worker.key)
    assert ttl > 400, ttl
    assert services.worker_redis.hget(worker.key, "last_heartbeat")


def test_a_heartbeat_soon_after_another_is_not_sent_but_a_late_one_is(services, monkeypatch):
    worker = PatientWorker([QUEUE_NAME], connection=services.worker_redis,
                           outage=Outage("test worker"))
    worker.register_birth()
    sent = count_round_trips(monkeypatch)
    worker.heartbeat()
    worker.heartbeat()
    assert sent[0] == 1
    monkeypatch.setattr(background, "HEARTBEAT_EVERY_SECONDS", 0.0)
    worker.heartbeat()
    assert sent[0] == 2


def test_a_lost_redis_still_ends_the_work_loop_at_the_next_heartbeat(services):
    queue = Queue(QUEUE_NAME, connection=services.worker_redis)
    job = queue.enqueue(doubled, 1)
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    worker = PatientWorker([QUEUE_NAME], connection=services.worker_redis,
                           outage=Outage("test worker"))
    worker.work(burst=True)
    assert job.get_status() == JobStatus.FINISHED
    worker.connection = gone
    worker._heartbeat_sent = float("-inf")
    try:
        worker.heartbeat()
    except RedisLost:
        pass
    else:
        raise AssertionError("a heartbeat to a lost Redis must end the work loop")
    assert worker.outage.ongoing
