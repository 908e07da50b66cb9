"""The register's daily upkeep jobs: each reads the clock, calls a use case and says what it did.

Each takes no arguments and is safe to run twice, or at the same time as itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import date, datetime

from config import clock
from usecases.upkeep import apply_retention, digest, record_lapses
from workers.context import services

log = logging.getLogger(__name__)

DIGEST_KEY = "callflow:upkeep:digest"
DIGEST_TTL_SECONDS = 3 * 86400


def _today(now: datetime) -> date:
    return clock.local_today(services().settings.tz, now)


def record_lapses_job() -> list[str]:
    """Daily: record the lapse of every entry past its end date."""
    now = clock.now_utc()
    s = services()
    recorded = record_lapses(s.register, now, _today(now), s.settings.lapse_unreviewed_after_days)
    log.info("recorded %d lapsed entr%s", len(recorded), "y" if len(recorded) == 1 else "ies")
    return recorded


def review_digest_job() -> dict[str, object]:
    """Daily: list reviews due and entries without a notice for the managers' dashboard."""
    s = services()
    now = clock.now_utc()
    with s.sessions() as session:
        found = digest(session, _today(now))
    found["at"] = now.isoformat()
    s.worker_redis.set(DIGEST_KEY, json.dumps(found), ex=DIGEST_TTL_SECONDS)
    return found


def retention_job() -> dict[str, int]:
    """Daily: delete or anonymise what is older than the retention period."""
    s = services()
    now = clock.now_utc()
    report = apply_retention(s.sessions, now, _today(now), s.settings.retention_days)
    log.info("retention: %s", report)
    return asdict(report)
