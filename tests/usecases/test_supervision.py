"""Help alerts and supervisors in real Redis, and the CSV's supervision steps in the real call log
(SQLite here; PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

from datetime import timedelta

from callflow.events import EventKind
from callflow.supervision import HelpState, SupervisionMode
from store.db import transaction
from store.help_alerts import OPEN_KEY, HelpAlerts, SupervisorLeg, Supervisors
from store.live_call import live_call_sids, set_live
from store.models import CallEvent
from tests.conftest import NOW
from usecases.supervision import supervision_log

SID = "CA" + "1" * 32
OTHER = "CA" + "3" * 32
LEG = "CA" + "6" * 32


def test_an_alert_is_raised_once_and_answered_by_the_first_supervisor_only(services):
    alerts = HelpAlerts(services.redis)
    assert alerts.raise_alert(SID, 3, NOW.isoformat(), 100.0) == 1
    assert alerts.raise_alert(SID, 3, NOW.isoformat(), 101.0) == 0, "a second click: same alert"
    first = alerts.answer(SID, 2, NOW.isoformat())
    later = alerts.answer(SID, 1, NOW.isoformat())
    assert (first.first, first.number, first.answered_by) == (True, 1, 2)
    assert (later.first, later.number, later.answered_by) == (False, 1, 2)
    [alert] = alerts.alerts()
    assert (alert.state, alert.staff_id, alert.answered_by) == (HelpState.ANSWERED, 3, 2)
    assert alerts.raise_alert(SID, 3, NOW.isoformat(), 102.0) == 2, "answered: a new alert"
    assert alerts.get(SID).answered_by is None


def test_answering_a_call_with_no_alert_is_none(services):
    assert HelpAlerts(services.redis).answer(SID, 2, NOW.isoformat()) is None


def test_an_alert_whose_call_has_gone_is_dropped_from_the_list(services):
    alerts = HelpAlerts(services.redis)
    alerts.raise_alert(SID, 3, NOW.isoformat(), 100.0)
    services.redis.delete(f"callflow:help:{SID}")  # expired with the call
    assert alerts.alerts() == []
    assert services.redis.zcard(OPEN_KEY) == 0


def test_supervisors_on_a_call_and_their_modes(services):
    supervisors = Supervisors(services.redis)
    supervisors.joined(SID, SupervisorLeg(2, LEG, SupervisionMode.LISTEN))
    supervisors.joined(SID, SupervisorLeg(2, LEG, SupervisionMode.COACH))
    assert supervisors.next_change(SID) == 1 and supervisors.next_change(SID) == 2
    assert supervisors.on_call(SID) == [SupervisorLeg(2, LEG, SupervisionMode.COACH)]
    assert supervisors.leg_of(SID, 2) == SupervisorLeg(2, LEG, SupervisionMode.COACH)
    assert supervisors.leg_of(SID, 5) is None


def test_every_call_with_live_state_is_found(services):
    set_live(services.redis, SID, {"state": "connected"})
    set_live(services.redis, OTHER, {"state": "waiting"})
    services.redis.set("callflow:live:not-a-call", "x")
    assert sorted(live_call_sids(services.redis)) == [SID, OTHER]


def test_the_csv_says_who_asked_answered_and_supervised_and_when(services, staff):
    alex, sam = staff["agent"], staff["supervisor"]
    steps = [
        (EventKind.HELP_REQUESTED, "help:1", 0, {"staff_id": alex.id}),
        (EventKind.HELP_ANSWERED, "help-answered:1", 1, {"staff_id": sam.id}),
        (EventKind.SUPERVISOR_JOINED, f"supervisor:{sam.id}:{LEG}", 2,
         {"staff_id": sam.id, "mode": "listen"}),
        (EventKind.SUPERVISION_CHANGED, f"supervision:{sam.id}:1", 4,
         {"staff_id": sam.id, "mode": "barge", "from_mode": "listen"}),
        (EventKind.WARNING, "warning:1", 3, {"staff_id": alex.id}),
    ]
    with transaction(services.sessions) as db:
        for kind, key, minutes, detail in steps:
            db.add(CallEvent(event_key=f"{SID}:{key}", call_sid=SID, kind=kind.value,
                             at=NOW + timedelta(minutes=minutes), detail=detail))
    found = supervision_log(services, [SID, OTHER], services.settings.tz)
    assert found == {SID: "help asked for by Agent at 10am; help answered by Supervisor at "
                          "10:01am; Supervisor listening from 10:02am; Supervisor in the "
                          "conversation from 10:04am"}
