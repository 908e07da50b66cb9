"""The dial probe (bench/pipeline.py) samples only once the workers have run the jobs the load
phases left queued: a caller's dispatch and the agent's offer wait behind them in the one queue,
so sampling during a backlog measured the backlog (real Redis, a real rq worker)."""

from __future__ import annotations

import threading
import time

from rq import SimpleWorker

from bench.pipeline import wait_for_jobs_drained

BACKLOG = 30


def _backlog(queue) -> None:
    for _ in range(BACKLOG):
        queue.enqueue(time.sleep, 0.01)


def test_the_probe_waits_until_the_workers_have_run_the_backlog(services):
    queue = services.queue
    _backlog(queue)
    found: dict = {}
    probe = threading.Thread(target=lambda: found.update(
        wait_for_jobs_drained(queue, within=30, quiet=0.2, below=1)))
    probe.start()
    time.sleep(0.3)
    assert probe.is_alive(), "it waits while jobs are queued"
    SimpleWorker([queue], connection=queue.connection).work(burst=True)  # in the main thread
    probe.join(30)
    assert found["jobs_queued"] == BACKLOG
    assert found["seconds_to_drain"] >= 0.3, "it waited for the worker"
    assert queue.count == 0 and queue.started_job_registry.count == 0


def test_an_idle_queue_is_drained_at_once(services):
    assert wait_for_jobs_drained(services.queue, within=5, quiet=0.1, below=1) == {
        "jobs_queued": 0, "seconds_to_drain": 0.0}


def test_a_backlog_no_worker_takes_is_reported_and_the_probe_goes_ahead(services, capsys):
    _backlog(services.queue)
    assert wait_for_jobs_drained(services.queue, within=0.3, quiet=0.1, below=1) == {
        "jobs_queued": BACKLOG, "seconds_to_drain": None, "still_behind": BACKLOG}
    assert f"still {BACKLOG} jobs behind after 0.3 s" in capsys.readouterr().err
