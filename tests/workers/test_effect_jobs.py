"""The one table from the core's effects to the jobs that carry them out."""

import pytest

from callflow.effects import (
    EFFECT_TYPES,
    CallerLeft,
    DialPerson,
    DialPool,
    FreeStaff,
    Leg,
    NextAgent,
    OfferVoicemail,
    PassedOn,
)
from store.call_events import Effect
from workers import pump
from workers.calls import JOBS

SID = "CA" + "a" * 32


def test_every_effect_the_core_can_ask_for_has_a_job():
    assert set(JOBS) == set(EFFECT_TYPES.values())


@pytest.mark.parametrize(("effect", "job", "args"), [
    (DialPool(0), "dispatch_to_pool", (SID, 0)),
    (DialPerson(4, Leg.DESIGNATED), "dial_staff", (SID, 4, "designated")),
    (NextAgent(4, 2), "agent_missed", (SID, 4, 2)),
    (OfferVoicemail(), "send_to_voicemail", (SID,)),
    (FreeStaff(4), "staff_free", (SID, 4)),
    (PassedOn(4, "voicemail"), "passed_on", (SID, 4, "voicemail")),
    (CallerLeft(), "call_finished", (SID,)),
])
def test_an_effect_starts_its_job_with_the_call_sid_first(services, effect, job, args):
    assert pump.start_effect(services.queue, SID, Effect.of(effect, "key"))
    started = services.queue.fetch_job(f"{SID}-key")
    assert (started.func_name, started.args) == (f"workers.calls.{job}", args)
