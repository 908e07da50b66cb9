"""The pipeline bench's CPU figures: per call, by role, and the service's own share."""

import os

from bench.pipeline import cpu_per_call


def test_cpu_a_call_counts_only_the_services_own_processes_towards_its_capacity():
    before = {"web": 10.0, "pump": 1.0, "worker": 2.0, "postgres": 5.0, "redis": 1.0,
              "scheduler": 0.0, "load generator": 3.0}
    after = {"web": 40.0, "pump": 16.0, "worker": 32.0, "postgres": 20.0, "redis": 7.0,
             "scheduler": 1.0, "load generator": 15.0}
    figures = cpu_per_call(after, before, calls=10_000)
    assert figures["by_role"] == {"web": 3.0, "pump": 1.5, "worker": 3.0, "postgres": 1.5,
                                  "redis": 0.6, "scheduler": 0.1, "load generator": 1.2}
    assert figures["service"] == 9.7  # the load generator left out
    assert figures["service_calls_per_second_on_these_cores"] == round(
        (os.cpu_count() or 1) * 1000 / 9.7)
