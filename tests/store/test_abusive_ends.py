"""The call log's memory of calls ended for abuse or threats (issue 14 item 4, policy 5.2)."""

from __future__ import annotations

from datetime import timedelta

from callflow.ending import EndReason
from store.call_queries import AbusiveEnd, last_abusive_end, last_abusive_ends
from store.db import transaction
from store.models import Call, CallEvent
from tests.conftest import NOW

CALLER = "+447700900123"
OTHER = "+447700900456"
SINCE = NOW - timedelta(days=30)


def ended_call(services, sid: str, number: str, at, *events: tuple[str, str | None]) -> None:
    """A call from `number` ended by an agent at `at`, with (kind, reason) events a minute apart."""
    with transaction(services.sessions) as db:
        db.add(Call(call_sid=sid, started_at=at - timedelta(minutes=2), ended_at=at,
                    from_number=number, ended_by_agent=True))
        for n, (kind, reason) in enumerate(events):
            db.add(CallEvent(event_key=f"{sid}:{kind}", call_sid=sid, kind=kind,
                             at=at + timedelta(minutes=n), detail={"reason": reason}))


def sid(n: int) -> str:
    return "CA" + f"{n:032d}"


def test_the_last_abusive_end_is_found_through_either_event(services):
    ended_call(services, sid(1), CALLER, NOW - timedelta(days=5),
               ("ended_by_agent", "threat_or_violence"))
    ended_call(services, sid(2), CALLER, NOW - timedelta(days=2),
               ("ended_by_agent", None), ("wrap_up", "aggressive_abusive"))
    ended_call(services, sid(3), CALLER, NOW - timedelta(days=1),
               ("ended_by_agent", "unreasonable_demands"))  # later, but not abuse
    with services.sessions() as db:
        found = last_abusive_end(db, CALLER, SINCE)
    assert found == AbusiveEnd(sid(2), NOW - timedelta(days=2, minutes=-1),
                               EndReason.AGGRESSIVE_ABUSIVE)


def test_older_calls_other_numbers_and_the_call_itself_are_left_out(services):
    ended_call(services, sid(1), CALLER, NOW - timedelta(days=31),
               ("ended_by_agent", "aggressive_abusive"))
    ended_call(services, sid(2), OTHER, NOW - timedelta(days=1),
               ("ended_by_agent", "aggressive_abusive"))
    with services.sessions() as db:
        assert last_abusive_end(db, CALLER, SINCE) is None
        assert last_abusive_end(db, OTHER, SINCE, exclude_sid=sid(2)) is None
        assert last_abusive_ends(db, [CALLER, OTHER], SINCE) == {
            OTHER: AbusiveEnd(sid(2), NOW - timedelta(days=1), EndReason.AGGRESSIVE_ABUSIVE)}
        assert last_abusive_ends(db, [], SINCE) == {}
