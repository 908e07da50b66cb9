"""Periodic jobs, loaded by the `callflow scheduler` command (service/background.py)."""

from rq import cron

import workers.cron_upkeep  # noqa: F401  (nightly lapses, reviews and retention)
from usecases.bootstrap import QUEUE_NAME
from workers.pump import pump_events
from workers.register_jobs import sync_routing_cache

# The standing pump (`callflow pump`) takes events as they arrive; this is the safety net for
# when it is not running, and replays events spooled to disk while Redis was down.
cron.register(pump_events, queue_name=QUEUE_NAME, interval=10)
cron.register(sync_routing_cache, queue_name=QUEUE_NAME, interval=60)
