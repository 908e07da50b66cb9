"""Register upkeep jobs: keeping the routing cache in step with the database."""

from __future__ import annotations

from config.clock import local_today
from workers.context import services


def sync_routing_cache() -> bool:
    """Rebuild the routing cache if it is missing or behind the register; safe to repeat."""
    s = services()
    return s.register.sync_cache(local_today(s.settings.tz))
