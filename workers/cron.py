"""Periodic jobs, loaded by `rq cron workers.cron` (the `callflow scheduler` command)."""

from rq import cron

from service.container import QUEUE_NAME
from workers.register_jobs import sync_routing_cache

cron.register(sync_routing_cache, queue_name=QUEUE_NAME, interval=60)
