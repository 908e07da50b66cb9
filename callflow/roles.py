"""Staff roles and what each may do (policy 4.5, 5.2), as values every access check uses."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member of staff's role; the value is what the staff table stores."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    ADMIN = "admin"


class Capability(StrEnum):
    """Something a role may do."""

    # Be offered calls: set availability, use the console and its browser phone.
    TAKE_CALLS = "take_calls"
    # Warn, end, wrap up and report on the call they are on (policy 4.5).
    END_CALLS = "end_calls"
    # View and act on any member of staff's call, not only their own.
    SUPERVISE_CALLS = "supervise_calls"
    # Read a restriction's reason, which can carry allegations; agents act on its arrangements.
    READ_RESTRICTION_REASONS = "read_restriction_reasons"
    # Read the workspace: the call log, the register, notices and the queue.
    REVIEW_CALLS = "review_calls"
    # Decide restrictions: add, change, review and lift entries (policy 5.2: managers only).
    DECIDE_RESTRICTIONS = "decide_restrictions"
    # See and hear call recordings kept as evidence (issue 14: managers only).
    HEAR_RECORDINGS = "hear_recordings"
    # Ask every available supervisor for help on the call they are on (issue 14).
    REQUEST_HELP = "request_help"
    # Answer a call for help; listen to, coach or join any live call (never agents).
    LISTEN_IN = "listen_in"
    # Triage voicemails and messages left by people on the register (policy 4.7, issue 13).
    TRIAGE_MESSAGES = "triage_messages"
    # Read the board's oversight report: figures, no personal data (issue 13 item 8).
    READ_BOARD_REPORT = "read_board_report"


CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.AGENT: frozenset({Capability.TAKE_CALLS, Capability.END_CALLS, Capability.REQUEST_HELP}),
    Role.SUPERVISOR: frozenset({
        Capability.TAKE_CALLS, Capability.END_CALLS, Capability.SUPERVISE_CALLS,
        Capability.READ_RESTRICTION_REASONS, Capability.REVIEW_CALLS, Capability.REQUEST_HELP,
        Capability.LISTEN_IN, Capability.TRIAGE_MESSAGES, Capability.READ_BOARD_REPORT}),
    Role.MANAGER: frozenset({
        Capability.END_CALLS, Capability.SUPERVISE_CALLS, Capability.READ_RESTRICTION_REASONS,
        Capability.REVIEW_CALLS, Capability.DECIDE_RESTRICTIONS, Capability.LISTEN_IN,
        Capability.HEAR_RECORDINGS, Capability.TRIAGE_MESSAGES, Capability.READ_BOARD_REPORT}),
    Role.ADMIN: frozenset({
        Capability.END_CALLS, Capability.SUPERVISE_CALLS, Capability.READ_RESTRICTION_REASONS,
        Capability.REVIEW_CALLS}),
}


def may(role: str | None, capability: Capability) -> bool:
    """True when `role` (a stored role string) has `capability`; unknown roles have none."""
    try:
        known = Role(role)
    except ValueError:
        return False
    return capability in CAPABILITIES[known]


def roles_with(capability: Capability) -> tuple[Role, ...]:
    """Every role that has `capability`, in the order of Role."""
    return tuple(role for role in Role if capability in CAPABILITIES[role])
