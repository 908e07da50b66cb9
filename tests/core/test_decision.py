"""The decision core: every route, as a pure function of plain values."""

import ast
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callflow.decision import Caller, Centre, Outcome, decide, voicemail_offers_emergency
from callflow.effects import (
    DialPerson,
    DialPool,
    Leg,
    NextAgent,
    OfferVoicemail,
    PassedOn,
    after_unanswered,
    passed_on,
)
from callflow.register import Restriction

LONDON = ZoneInfo("Europe/London")
CENTRE = Centre.from_text(
    "Mon-Fri 08:00-18:00", LONDON,
    bank_holidays=frozenset({date(2026, 12, 25), date(2026, 12, 28)}),
    emergency_number="+441632960999", written_contact="PO Box 1, Durham",
)
TUESDAY_10AM = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SID = "CA" + "1" * 32


def restriction(**changes):
    values = dict(entry_id=7, starts_on=date(2026, 11, 1), ends_on=date(2027, 5, 1),
                  written_only=False, call_windows="", designated_contact_id=None,
                  fallback_contact_id=None)
    values.update(changes)
    return Restriction(**values)


def caller(**changes):
    values = dict(call_sid=SID, number="+447700900123")
    values.update(changes)
    return Caller(**values)


def local(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("who", "now", "outcome"),
    [
        (caller(), TUESDAY_10AM, Outcome.CENTRE),
        (caller(number=None, withheld=True), TUESDAY_10AM, Outcome.WITHHELD),
        (caller(lookup_failed=True), TUESDAY_10AM, Outcome.REGISTER_CHECK_FAILED),
        (caller(restriction=restriction(written_only=True)), TUESDAY_10AM, Outcome.WRITTEN_ONLY),
        (caller(restriction=restriction(written_only=True)), local(2026, 12, 5, 10),
         Outcome.WRITTEN_ONLY),
        (caller(restriction=restriction(call_windows="Tue 10:00-12:00")), TUESDAY_10AM,
         Outcome.WITHIN_WINDOW),
        (caller(restriction=restriction(call_windows="Thu 10:00-12:00")), TUESDAY_10AM,
         Outcome.OUTSIDE_WINDOW),
        (caller(restriction=restriction(designated_contact_id=3)), TUESDAY_10AM,
         Outcome.DESIGNATED_CONTACT),
        (caller(restriction=restriction(call_windows="Tue 10:00-12:00", designated_contact_id=3)),
         TUESDAY_10AM, Outcome.DESIGNATED_CONTACT),
        (caller(restriction=restriction(starts_on=date(2026, 12, 2))), TUESDAY_10AM,
         Outcome.CENTRE),
        (caller(restriction=restriction(ends_on=date(2026, 11, 30))), TUESDAY_10AM,
         Outcome.CENTRE),
        (caller(), local(2026, 12, 5, 10), Outcome.CLOSED),
        (caller(), local(2026, 12, 25, 10), Outcome.CLOSED),
        (caller(number=None, withheld=True), local(2026, 12, 1, 18), Outcome.CLOSED),
        (caller(restriction=restriction(designated_contact_id=3)), local(2026, 12, 1, 19),
         Outcome.CLOSED),
    ],
)
def test_each_caller_gets_the_route_the_policy_gives(who, now, outcome):
    assert decide(who, CENTRE, now).outcome is outcome


def test_written_only_reads_the_written_route_and_offers_the_emergency_option():
    decision = decide(caller(restriction=restriction(written_only=True)), CENTRE, TUESDAY_10AM)
    assert any("PO Box 1, Durham" in line for line in decision.message)
    assert decision.offer_emergency and not decision.connects


@pytest.mark.parametrize(
    ("windows", "now", "spoken"),
    [
        ("Thu 10:00-12:00", TUESDAY_10AM, "on Thursday between 10 a.m. and 12 noon"),
        ("Wed 10:00-12:00", TUESDAY_10AM, "tomorrow between 10 a.m. and 12 noon"),
        ("Tue 14:00-15:30", TUESDAY_10AM, "today between 2 p.m. and 3:30 p.m."),
        ("Fri 09:00-10:00", local(2026, 12, 22, 11), "on Friday 1 January between 9 a.m."),
    ],
)
def test_outside_a_window_the_caller_hears_when_they_may_call_next(windows, now, spoken):
    decision = decide(caller(restriction=restriction(call_windows=windows)), CENTRE, now)
    assert decision.outcome is Outcome.OUTSIDE_WINDOW
    assert any(spoken in line for line in decision.message), decision.message


def test_a_window_on_a_bank_holiday_does_not_match_unless_configured():
    christmas = local(2026, 12, 25, 10, 30)
    who = caller(restriction=restriction(call_windows="Fri 10:00-12:00",
                                         designated_contact_id=3))
    assert decide(who, CENTRE, christmas).outcome is Outcome.OUTSIDE_WINDOW
    allowed = Centre(**{**CENTRE.__dict__, "windows_on_bank_holidays": True})
    assert decide(who, allowed, christmas).outcome is Outcome.DESIGNATED_CONTACT


def test_closed_message_names_the_next_opening_after_the_bank_holidays():
    decision = decide(caller(), CENTRE, local(2026, 12, 24, 19))
    assert decision.outcome is Outcome.CLOSED
    assert "We open again on Tuesday at 8 a.m." in decision.message


@pytest.mark.parametrize(
    ("opens_utc", "note"),
    [(datetime(2026, 3, 30, 7, 0, tzinfo=UTC), "BST: 08:00 local is 07:00 UTC"),
     (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), "GMT: 08:00 local is 08:00 UTC")],
)
def test_opening_hours_follow_local_time_across_the_clock_changes(opens_utc, note):
    assert decide(caller(), CENTRE, opens_utc).outcome is Outcome.CENTRE, note
    assert decide(caller(), CENTRE, opens_utc - timedelta(minutes=1)).outcome is Outcome.CLOSED


def test_midnight_ends_one_day_and_starts_the_next():
    evenings = caller(restriction=restriction(call_windows="Tue 18:00-24:00",
                                              designated_contact_id=3))
    always_open = Centre(**{**CENTRE.__dict__,
                            "opening_hours": Centre.from_text("Mon-Sun 00:00-24:00",
                                                              LONDON).opening_hours})
    before = decide(evenings, always_open, local(2026, 12, 1, 23, 59))
    after = decide(evenings, always_open, local(2026, 12, 2, 0, 0))
    assert before.outcome is Outcome.DESIGNATED_CONTACT
    assert after.outcome is Outcome.OUTSIDE_WINDOW
    assert "You can next call us on Tuesday between 6 p.m. and midnight." in after.message


def test_inside_a_window_while_the_centre_is_closed_the_caller_hears_the_closed_message():
    late = caller(restriction=restriction(call_windows="Tue 18:00-24:00"))
    assert decide(late, CENTRE, local(2026, 12, 1, 19)).outcome is Outcome.CLOSED


@pytest.mark.parametrize(
    "who",
    [caller(), caller(restriction=restriction(written_only=True)),
     caller(restriction=restriction(call_windows="Thu 10:00-12:00"))],
)
def test_pressing_1_always_reaches_the_emergency_line(who):
    decision = decide(who, CENTRE, local(2026, 12, 5, 3), digits="1")
    assert decision.outcome is Outcome.EMERGENCY
    assert [e.kind for e in decision.events] == ["emergency"]


def test_without_an_emergency_number_the_option_is_not_offered():
    off = Centre(**{**CENTRE.__dict__, "emergency_number": ""})
    decision = decide(caller(restriction=restriction(written_only=True)), off, TUESDAY_10AM)
    assert not decision.offer_emergency
    assert decide(caller(), off, TUESDAY_10AM, digits="1").outcome is not Outcome.EMERGENCY


def test_a_first_decision_records_received_lookup_and_decision_events():
    decision = decide(caller(restriction=restriction(written_only=True), lookup_source="cache"),
                      CENTRE, TUESDAY_10AM)
    assert [(e.kind, e.key) for e in decision.events] == [
        ("received", "received"), ("lookup", "lookup"), ("decision", "decision")]
    assert decision.events[1].detail == {"source": "cache", "failed": False, "entry_id": 7}
    assert all(e.at == TUESDAY_10AM for e in decision.events)


@pytest.mark.parametrize(
    ("leg", "fallback", "step"),
    [(Leg.POOL, None, NextAgent(5, 2)), (Leg.DESIGNATED, 9, DialPerson(9, Leg.FALLBACK)),
     (Leg.DESIGNATED, None, OfferVoicemail()), (Leg.FALLBACK, 9, OfferVoicemail())],
)
def test_an_unanswered_leg_always_leaves_a_route(leg, fallback, step):
    assert after_unanswered(leg, 5, 2, fallback) == step


@pytest.mark.parametrize(
    ("leg", "step", "note"),
    [(Leg.DESIGNATED, DialPerson(9, Leg.FALLBACK), PassedOn(5, "fallback")),
     (Leg.DESIGNATED, OfferVoicemail(), PassedOn(5, "voicemail")),
     (Leg.FALLBACK, OfferVoicemail(), None), (Leg.POOL, NextAgent(5, 0), None)],
)
def test_a_designated_contact_hears_where_their_unanswered_call_went(leg, step, note):
    assert passed_on(leg, 5, step) == note


def test_a_caller_put_through_rings_the_pool_first():
    decision = decide(Caller(call_sid=SID, number="+447700900123"), CENTRE, TUESDAY_10AM)
    assert decision.effects == (DialPool(0),)


def test_a_caller_with_a_designated_contact_rings_them_first():
    caller = Caller(call_sid=SID, number="+447700900123",
                    restriction=restriction(designated_contact_id=4, fallback_contact_id=6))
    assert decide(caller, CENTRE, TUESDAY_10AM).effects == (DialPerson(4, Leg.DESIGNATED),)


def test_a_caller_who_hears_a_message_rings_nobody():
    caller = Caller(call_sid=SID, number="+447700900123",
                    restriction=restriction(written_only=True))
    assert decide(caller, CENTRE, TUESDAY_10AM).effects == ()


def test_an_effect_is_written_as_plain_values():
    assert DialPerson(4, Leg.FALLBACK).arguments() == (4, "fallback")
    assert NextAgent(4, 1).arguments() == (4, 1)
    assert OfferVoicemail().arguments() == ()


FORBIDDEN_MODULES = {"flask", "twilio", "redis", "rq", "sqlalchemy", "os", "time", "werkzeug",
                     "config", "store", "service", "webhooks", "workers"}


@pytest.mark.parametrize("path", sorted(Path("callflow").glob("*.py")), ids=str)
def test_the_core_does_no_io_and_never_reads_the_clock(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr in {"now", "today", "utcnow"}:
            raise AssertionError(f"{path} reads the clock (.{node.attr})")


RESTRICTED_PATHS = {
    "written only": (restriction(written_only=True), TUESDAY_10AM, Outcome.WRITTEN_ONLY),
    "outside a window": (restriction(call_windows="Thu 10:00-12:00"), TUESDAY_10AM,
                         Outcome.OUTSIDE_WINDOW),
    "within a window": (restriction(call_windows="Tue 10:00-12:00"), TUESDAY_10AM,
                        Outcome.WITHIN_WINDOW),
    "designated contact": (restriction(designated_contact_id=3), TUESDAY_10AM,
                           Outcome.DESIGNATED_CONTACT),
    "designated contact with a fallback": (
        restriction(designated_contact_id=3, fallback_contact_id=4), TUESDAY_10AM,
        Outcome.DESIGNATED_CONTACT),
    "centre closed": (restriction(designated_contact_id=3), local(2026, 12, 1, 19),
                      Outcome.CLOSED),
}


@pytest.mark.parametrize("path", sorted(RESTRICTED_PATHS))
def test_every_restricted_caller_is_offered_the_emergency_option_on_every_path(path):
    entry, now, outcome = RESTRICTED_PATHS[path]
    decision = decide(caller(restriction=entry), CENTRE, now)
    assert (decision.outcome, decision.offer_emergency) == (outcome, True)


@pytest.mark.parametrize("path", sorted(RESTRICTED_PATHS))
def test_without_an_emergency_number_no_restricted_path_offers_it(path):
    off = Centre(**{**CENTRE.__dict__, "emergency_number": ""})
    entry, now, outcome = RESTRICTED_PATHS[path]
    decision = decide(caller(restriction=entry), off, now)
    assert (decision.outcome, decision.offer_emergency) == (outcome, False)


@pytest.mark.parametrize("who", [caller(), caller(number=None, withheld=True),
                                 caller(lookup_failed=True)])
def test_unrestricted_callers_are_put_through_without_the_offer(who):
    assert not decide(who, CENTRE, TUESDAY_10AM).offer_emergency


@pytest.mark.parametrize(("restricted", "number", "offered"), [
    (True, "+441632960999", True), (False, "+441632960999", False), (True, "", False)])
def test_the_voicemail_prompt_offers_the_emergency_option_to_restricted_callers(
        restricted, number, offered):
    centre = Centre(**{**CENTRE.__dict__, "emergency_number": number})
    assert voicemail_offers_emergency(restricted, centre) is offered
