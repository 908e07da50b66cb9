"""Live supervision's rules: who may ask and listen, the participant flags, and the words."""

from __future__ import annotations

import pytest

from callflow.call_state import CallState
from callflow.events import EventKind
from callflow.roles import Capability, Role, may, roles_with
from callflow.supervision import (
    HELP_SHORTCUT,
    ParticipantFlags,
    SupervisionMode,
    SupervisionRefusal,
    SupervisionRefused,
    alert_text,
    caller_text,
    check_help,
    check_joinable,
    check_switch,
    mode_sentence,
    participant_flags,
    your_mode,
)

AGENT_LEG = "CA" + "5" * 32


@pytest.mark.parametrize(("capability", "roles"), [
    (Capability.REQUEST_HELP, ("agent", "supervisor")),
    # Agents never listen in; supervisors and managers may.
    (Capability.LISTEN_IN, ("supervisor", "manager")),
])
def test_who_may_ask_for_help_and_who_may_listen_in(capability, roles):
    assert roles_with(capability) == roles
    for role in Role:
        assert may(role.value, capability) is (role.value in roles)


def test_supervisors_still_cannot_change_the_register():
    assert not may(Role.SUPERVISOR.value, Capability.DECIDE_RESTRICTIONS)


@pytest.mark.parametrize(("mode", "flags"), [
    (SupervisionMode.LISTEN, ParticipantFlags(muted=True, coaching=False)),
    (SupervisionMode.COACH, ParticipantFlags(muted=False, coaching=True,
                                             call_sid_to_coach=AGENT_LEG)),
    (SupervisionMode.BARGE, ParticipantFlags(muted=False, coaching=False)),
])
def test_each_mode_sets_the_participant_flags_twilio_needs(mode, flags):
    assert participant_flags(mode, AGENT_LEG) == flags


def test_coaching_needs_the_agents_leg():
    with pytest.raises(SupervisionRefused) as refused:
        participant_flags(SupervisionMode.COACH, None)
    assert refused.value.refusal is SupervisionRefusal.NO_AGENT_LEG


@pytest.mark.parametrize(("state", "ended", "staff_id", "refusal"), [
    (CallState.WAITING, False, None, SupervisionRefusal.NOT_CONNECTED),
    (CallState.RINGING, False, None, SupervisionRefusal.NOT_CONNECTED),
    (CallState.ENDED, False, 7, SupervisionRefusal.ENDED),
    (CallState.CONNECTED, True, 7, SupervisionRefusal.ENDED),
    (CallState.CONNECTED, False, 9, SupervisionRefusal.OWN_CALL),
    (None, False, None, SupervisionRefusal.NOT_CONNECTED),
])
def test_only_a_connected_call_of_someone_else_can_be_joined(state, ended, staff_id, refusal):
    with pytest.raises(SupervisionRefused) as refused:
        check_joinable(state, ended, staff_id, supervisor_id=9)
    assert refused.value.refusal is refusal


def test_a_connected_call_of_another_agent_can_be_joined():
    assert check_joinable(CallState.CONNECTED, False, 7, supervisor_id=9) is None


@pytest.mark.parametrize(("state", "ended", "staff_id", "refusal"), [
    (CallState.CONNECTED, False, 8, SupervisionRefusal.NOT_ON_CALL),
    (CallState.RINGING, False, None, SupervisionRefusal.NOT_ON_CALL),
    (CallState.ENDED, False, 7, SupervisionRefusal.ENDED),
    (CallState.CONNECTED, True, 7, SupervisionRefusal.ENDED),
])
def test_help_is_asked_for_only_on_the_askers_own_connected_call(state, ended, staff_id,
                                                                 refusal):
    with pytest.raises(SupervisionRefused) as refused:
        check_help(state, ended, staff_id, asker_id=7)
    assert refused.value.refusal is refusal
    assert check_help(CallState.CONNECTED, False, 7, asker_id=7) is None


@pytest.mark.parametrize(("current", "wanted", "refusal"), [
    (None, SupervisionMode.COACH, SupervisionRefusal.NOT_JOINED),
    (SupervisionMode.COACH, SupervisionMode.COACH, SupervisionRefusal.SAME_MODE),
])
def test_a_switch_needs_a_supervisor_on_the_call_and_a_new_mode(current, wanted, refusal):
    with pytest.raises(SupervisionRefused) as refused:
        check_switch(current, wanted)
    assert refused.value.refusal is refusal
    assert check_switch(SupervisionMode.LISTEN, SupervisionMode.BARGE) is None


def test_the_alert_names_the_agent_the_caller_and_the_register():
    caller = caller_text("07700 900123", "QL-2")
    assert caller == "07700 900123 (register entry QL-2)"
    assert alert_text("Alex", caller, True) == (
        "Alex needs help on a call with 07700 900123 (register entry QL-2). "
        "The caller is on the person of interest register.")
    assert alert_text("Jo", caller_text("a withheld number", None), False) == (
        "Jo needs help on a call with a withheld number. The caller is not on the register.")


@pytest.mark.parametrize(("mode", "theirs", "yours"), [
    (SupervisionMode.LISTEN, "Sam is listening (muted; nobody hears them)",
     "You are listening (muted; nobody hears you)"),
    (SupervisionMode.COACH, "Sam is coaching (only the agent hears them)",
     "You are coaching (only the agent hears you)"),
    (SupervisionMode.BARGE, "Sam is in the conversation (the caller and the agent hear them)",
     "You are in the conversation (the caller and the agent hear you)"),
])
def test_each_mode_reads_as_plain_english(mode, theirs, yours):
    assert mode_sentence("Sam", mode) == theirs
    assert your_mode(mode) == yours


def test_the_shortcut_is_not_a_browser_or_screen_reader_key():
    keys = HELP_SHORTCUT.split("+")
    assert keys == ["Alt", "Shift", "H"]
    assert not {"Ctrl", "Control", "Meta", "Insert", "CapsLock"} & set(keys)


def test_the_new_event_kinds_keep_their_stored_values():
    assert [EventKind.HELP_REQUESTED, EventKind.HELP_ANSWERED, EventKind.SUPERVISOR_JOINED,
            EventKind.SUPERVISION_CHANGED] == [
        "help_requested", "help_answered", "supervisor_joined", "supervision_changed"]
