"""Help on the spot and a supervisor on the line: the rules and words of live supervision.

An agent asks for help in one click; every available supervisor is alerted and the first to
answer is logged. A supervisor joins the call's conference to listen (muted), to coach (heard by
the agent alone: Twilio's Coaching with CallSidToCoach) or to barge (heard by both), and may
switch between them. Pure: the shell hands in who, the call's state and the agent's leg.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callflow.call_state import CallState

# The console's shortcut for "I need help": not a browser's (Ctrl/Cmd combinations, Alt+letter
# menus) nor a screen reader's (NVDA and JAWS use Insert or Caps Lock; VoiceOver Ctrl+Option).
HELP_SHORTCUT = "Alt+Shift+H"
HELP_SHORTCUT_TEXT = "Alt and Shift and H"


class SupervisionMode(StrEnum):
    """How a supervisor is on a call (the values are the API's and the call log's)."""

    LISTEN = "listen"  # muted: hears both, heard by nobody
    COACH = "coach"  # heard by the agent alone
    BARGE = "barge"  # heard by the caller and the agent

    @property
    def label(self) -> str:
        """The mode as a button or a timeline reads it."""
        return MODE_LABELS[self]


MODE_LABELS = {
    SupervisionMode.LISTEN: "Listen",
    SupervisionMode.COACH: "Coach the agent",
    SupervisionMode.BARGE: "Join the conversation",
}

# What each mode means for the people on the call, as a sentence ends: "Sam is ...".
MODE_DOING = {
    SupervisionMode.LISTEN: "listening (muted; nobody hears them)",
    SupervisionMode.COACH: "coaching (only the agent hears them)",
    SupervisionMode.BARGE: "in the conversation (the caller and the agent hear them)",
}

# The mode in a word or two, for one-line logs (the call log's CSV).
MODE_SHORT = {
    SupervisionMode.LISTEN: "listening",
    SupervisionMode.COACH: "coaching",
    SupervisionMode.BARGE: "in the conversation",
}


class HelpState(StrEnum):
    """Where a help request is (the values are stored in Redis)."""

    RAISED = "raised"  # supervisors alerted; nobody has answered yet
    ANSWERED = "answered"  # a supervisor has answered it


class SupervisionRefusal(StrEnum):
    """Why a supervision step cannot be done; the values are what staff read."""

    NOT_CONNECTED = "the caller is not connected to a member of staff, so there is nothing to join"
    ENDED = "the call has ended"
    NO_AGENT_LEG = "the agent's side of the call is not known, so they cannot be coached"
    NOT_JOINED = "you are not on this call yet: choose listen, coach or join the conversation"
    ALREADY_JOINED = "you are already on this call: switch how you are on it instead"
    SAME_MODE = "you are already on the call that way"
    OWN_CALL = "you are the member of staff on this call"
    NO_PHONE = "you have no browser phone or phone number to be rung on; ask an administrator"
    NOT_ON_CALL = "you can ask for help only on a call you are on"
    NO_ALERT = "nobody has asked for help on this call"


class SupervisionRefused(Exception):
    """A supervision step that cannot be done, and why."""

    def __init__(self, refusal: SupervisionRefusal):
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True)
class ParticipantFlags:
    """A supervisor's conference participant flags, as Twilio's Participant resource names them."""

    muted: bool
    coaching: bool
    call_sid_to_coach: str | None = None


def participant_flags(mode: SupervisionMode, agent_leg_sid: str | None) -> ParticipantFlags:
    """The flags that put a supervisor on the call in `mode`; coaching needs the agent's leg."""
    if mode is SupervisionMode.LISTEN:
        return ParticipantFlags(muted=True, coaching=False)
    if mode is SupervisionMode.COACH:
        if not agent_leg_sid:
            raise SupervisionRefused(SupervisionRefusal.NO_AGENT_LEG)
        return ParticipantFlags(muted=False, coaching=True, call_sid_to_coach=agent_leg_sid)
    return ParticipantFlags(muted=False, coaching=False)


def check_joinable(state: CallState | None, ended_by_agent: bool, staff_id: int | None,
                   supervisor_id: int) -> None:
    """Refuse to join a call that is not connected to someone else (SupervisionRefused)."""
    if state is CallState.ENDED or ended_by_agent:
        raise SupervisionRefused(SupervisionRefusal.ENDED)
    if state is not CallState.CONNECTED or staff_id is None:
        raise SupervisionRefused(SupervisionRefusal.NOT_CONNECTED)
    if staff_id == supervisor_id:
        raise SupervisionRefused(SupervisionRefusal.OWN_CALL)


def check_switch(current: SupervisionMode | None, wanted: SupervisionMode) -> None:
    """Refuse a switch for a supervisor who is not on the call, or already on it that way."""
    if current is None:
        raise SupervisionRefused(SupervisionRefusal.NOT_JOINED)
    if current is wanted:
        raise SupervisionRefused(SupervisionRefusal.SAME_MODE)


def check_help(state: CallState | None, ended_by_agent: bool, staff_id: int | None,
               asker_id: int) -> None:
    """Refuse help on a call the asker is not connected to, or that has ended."""
    if state is CallState.ENDED or ended_by_agent:
        raise SupervisionRefused(SupervisionRefusal.ENDED)
    if state is not CallState.CONNECTED or staff_id != asker_id:
        raise SupervisionRefused(SupervisionRefusal.NOT_ON_CALL)


def caller_text(number_text: str, customer_ref: str | None) -> str:
    """Who the caller is in an alert: their entry's reference when on the register, else number."""
    if customer_ref:
        return f"{number_text} (register entry {customer_ref})"
    return number_text


def alert_text(agent: str, caller: str, on_register: bool) -> str:
    """The help alert a supervisor reads (and a screen reader says)."""
    register = ("The caller is on the person of interest register."
                if on_register else "The caller is not on the register.")
    return f"{agent} needs help on a call with {caller}. {register}"


def mode_sentence(who: str, mode: SupervisionMode) -> str:
    """'Sam is listening (muted; nobody hears them)'."""
    return f"{who} is {MODE_DOING[mode]}"


def your_mode(mode: SupervisionMode) -> str:
    """'You are listening (muted; nobody hears them)', for the supervisor themselves."""
    return f"You are {MODE_DOING[mode]}".replace(" them)", " you)")
