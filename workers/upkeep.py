"""The register's daily upkeep jobs: each reads the clock, calls a use case and says what it did.

Each takes no arguments and is safe to run twice, or at the same time as itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import date, datetime

from config import clock
from usecases import triage
from usecases.notices import Notices
from usecases.recordings import purge_recordings
from usecases.upkeep import apply_retention, digest, record_lapses
from workers.context import services

log = logging.getLogger(__name__)

DIGEST_KEY = "callflow:upkeep:digest"
DIGEST_TTL_SECONDS = 3 * 86400


def _today(now: datetime) -> date:
    return clock.local_today(services().settings.tz, now)


def record_lapses_job() -> list[str]:
    """Daily: record the lapse of every entry past its end date, and write their letters."""
    now = clock.now_utc()
    s = services()
    recorded = record_lapses(s.register, now, _today(now), s.settings.lapse_unreviewed_after_days)
    # After the lapses are committed; a retry writes only the letters still missing.
    Notices(s.register, s.settings).produce_lapse_letters(now, _today(now))
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
    # Recordings first, at Twilio too, while their calls still say how old they are (issue 14).
    recordings = purge_recordings(s, now, s.settings.retention_days)
    report = apply_retention(s.sessions, now, _today(now), s.settings.retention_days)
    log.info("retention: %s; recordings: %s", report, recordings)
    return {**asdict(report), **{f"recordings_{k}": v for k, v in asdict(recordings).items()}}


def triage_catch_up_job() -> int:
    """Often: put on the triage queue any voicemail from the register the call log missed
    (its event landed before the call's lookup); issue 13, policy 4.7. Safe to repeat."""
    queued = triage.catch_up(services().sessions)
    log.info("triage: %d voicemail(s) queued late", queued)
    return queued
