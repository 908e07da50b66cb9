"""Where the pump's time goes: cProfile of one `pump_events()` over a stream of real webhooks.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python -m bench.pump_profile

Sends --calls incoming calls and their final status callbacks through the app in-process (signed,
Twilio's full parameter set), so the stream holds what the webhooks really write, then profiles
the pump moving it into the call log of a fresh PostgreSQL schema (dropped afterwards), with a
redis-server of its own on a free loopback port. With --worker, then the service's rq worker
(`service.background.PatientWorker`, in this process, burst mode) running the jobs the pump
enqueued (no agent is available and Twilio's API is not reachable: the jobs' own work is small,
so this is mostly rq's cost per job).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

from bench.incoming_calls import ACCOUNT_SID, BASE_URL, TOKEN, call_params
from bench.pipeline import scratch_service


def main(argv: list[str] | None = None) -> int:
    """Fill the stream, profile the pump, print CPU per call and the top functions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--worker", action="store_true",
                        help="profile the rq worker over the enqueued jobs too")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url (or DATABASE_URL): a PostgreSQL URL")

    from twilio.request_validator import RequestValidator

    from config.settings import load_settings
    from service.app import create_app
    from store.call_events import STREAM_KEY
    from usecases.bootstrap import Services
    from workers import pump
    from workers.context import use_services

    with scratch_service(args.database_url, "callflow-pump-") as scratch:
        services = Services(load_settings(scratch.env))
        use_services(services)
        client = create_app(services=services).test_client()
        validator = RequestValidator(TOKEN)

        def post(path: str, params: dict[str, str]) -> int:
            signature = validator.compute_signature(BASE_URL + path, params)
            return client.post(path, data=params, base_url=BASE_URL,
                               headers={"X-Twilio-Signature": signature}).status_code

        for i in range(args.calls):
            sid = f"CA{i:032x}"
            assert post("/twilio/voice/incoming", call_params(sid, f"+44770090{i:04d}")) == 200
            assert post("/twilio/voice/status", {
                "AccountSid": ACCOUNT_SID, "CallSid": sid, "CallStatus": "completed",
                "CallDuration": "42", "SequenceNumber": "3"}) == 204
        entries = services.worker_redis.xlen(STREAM_KEY)
        profile = cProfile.Profile()
        cpu, wall = time.process_time(), time.perf_counter()
        profile.enable()
        events = pump.pump_events()
        profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{entries} stream entries, {events} events from {args.calls} calls: "
              f"{wall:.2f} s wall, {cpu:.2f} s CPU, {cpu / args.calls * 1000:.1f} ms CPU a call "
              f"(under cProfile)")
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        if args.worker:
            _profile_worker(services, args.calls, args.top)
        use_services(None)
        services.close()
        return 0


def _profile_worker(services, calls: int, top: int) -> None:
    """cProfile of the service's worker running, in burst mode, what the pump enqueued."""
    from rq import Queue

    from service.background import PatientWorker
    from store.redis_client import Outage
    from usecases.bootstrap import QUEUE_NAME

    jobs = Queue(QUEUE_NAME, connection=services.worker_redis).count
    worker = PatientWorker([QUEUE_NAME], connection=services.worker_redis,
                           outage=Outage("profiled worker"))
    profile = cProfile.Profile()
    cpu, wall = time.process_time(), time.perf_counter()
    profile.enable()
    worker.work(burst=True)
    profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"worker: {jobs} jobs from {calls} calls: {wall:.2f} s wall, {cpu:.2f} s CPU, "
          f"{cpu / max(jobs, 1) * 1000:.1f} ms CPU a job (under cProfile)")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
