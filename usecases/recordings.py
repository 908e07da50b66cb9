"""Call recordings as evidence (issue 14 item 7): keep what Twilio recorded, and delete it, at
Twilio too, when the call log's retention removes its call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import select

from callflow import events, words
from callflow.announcement import LEAVE_WORDS, Party, leave_reason
from callflow.events import EventKind
from callflow.recording import RECORDING_STATUS_WORDS, duration_words, recording_status
from store import recordings as store
from store.call_events import Batch
from store.db import transaction
from store.models import CallEvent
from store.twilio_rest import TwilioRefused, TwilioUnavailable, delete_recording
from usecases.bootstrap import Services

log = logging.getLogger(__name__)

PURGE_BATCH = 100


def recording_reported(services: Services, news: store.RecordingNews) -> None:
    """Keep a recording Twilio reported for a call, and put it on the call's timeline."""
    with transaction(services.sessions) as session:
        store.keep(session, news)
    services.event_sink.emit(Batch(news.call_sid, (events.call_recording(
        news.at, news.recording_sid, news.status, news.duration_seconds,
        news.recording_url),)))


@dataclass(frozen=True)
class PurgeReport:
    """What one retention run did to recordings."""

    deleted: int = 0  # at Twilio and here
    already_gone: int = 0  # Twilio had none; deleted here
    kept_for_now: int = 0  # Twilio could not be reached: tried again next run


def purge_recordings(services: Services, now: datetime, retention_days: int) -> PurgeReport:
    """Delete recordings older than the retention period, at Twilio first, then here."""
    cutoff = now - timedelta(days=retention_days)
    deleted = gone = kept = 0
    seen: set[int] = set()
    while True:
        with services.sessions() as session:
            batch = [(r.id, r.recording_sid) for r in store.older_than(session, cutoff,
                                                                        PURGE_BATCH)
                     if r.id not in seen]
        if not batch:
            break
        done: list[int] = []
        for row_id, recording_sid in batch:
            seen.add(row_id)
            try:
                existed = delete_recording(services.twilio, recording_sid)
            except (TwilioUnavailable, TwilioRefused) as failed:
                # Kept, so that the next run deletes it at Twilio: a row never goes first.
                log.warning("recording %s not deleted at Twilio: %s", recording_sid, failed)
                kept += 1
                continue
            done.append(row_id)
            if existed:
                deleted += 1
            else:
                gone += 1
        with transaction(services.sessions) as session:
            store.forget(session, done)
    return PurgeReport(deleted, gone, kept)


# What the call log's CSV says of items 5-7 of issue 14, kind by kind.
_CSV_KINDS = (EventKind.WARNING_PLAYED, EventKind.WARNING_FAILED, EventKind.LEFT_CONFERENCE,
              EventKind.ANSWERING_MACHINE, EventKind.CALL_RECORDING)


def warning_and_recording_log(services: Services, call_sids: Iterable[str], tz: tzinfo, *,
                              with_recordings: bool) -> dict[str, str]:
    """Each call's warning, departures, answering machines and (for managers) recordings, in
    one line of plain words for the CSV export."""
    wanted = list(call_sids)
    if not wanted:
        return {}
    kinds = [k.value for k in _CSV_KINDS
             if with_recordings or k is not EventKind.CALL_RECORDING]
    steps: dict[str, list[str]] = {}
    with services.sessions() as db:
        for event in db.scalars(
                select(CallEvent).where(CallEvent.call_sid.in_(wanted), CallEvent.kind.in_(kinds))
                .order_by(CallEvent.at, CallEvent.id)):
            when = words.clock(event.at.astimezone(tz))
            steps.setdefault(event.call_sid, []).append(f"{_csv_step(event)} at {when}")
    return {sid: "; ".join(found) for sid, found in steps.items()}


def _csv_step(event: CallEvent) -> str:
    detail = event.detail
    if event.kind == EventKind.WARNING_PLAYED:
        return "warning played"
    if event.kind == EventKind.WARNING_FAILED:
        return "warning failed to play"
    if event.kind == EventKind.LEFT_CONFERENCE:
        who = {Party.CALLER: "the caller", Party.STAFF: "the member of staff"}.get(
            Party(detail["party"]) if detail.get("party") in set(Party) else Party.OTHER,
            "someone else")
        return f"{who} left ({LEAVE_WORDS[leave_reason(str(detail.get('reason', '')))]})"
    if event.kind == EventKind.ANSWERING_MACHINE:
        return "a voicemail answered, treated as no answer"
    status = recording_status(str(detail.get("status", "")))
    length = detail.get("duration")
    said = RECORDING_STATUS_WORDS[status].lower() if status else "call recording"
    return f"{said} ({duration_words(length)})" if isinstance(length, int) else said
