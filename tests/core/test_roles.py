"""Roles and what each may do, from one table (policy 4.5, 5.2)."""

from __future__ import annotations

import pytest

from callflow.roles import Capability, Role, may, roles_with


def test_the_stored_role_strings_are_unchanged():
    assert [role.value for role in Role] == ["agent", "supervisor", "manager", "admin"]


@pytest.mark.parametrize(("capability", "roles"), [
    (Capability.TAKE_CALLS, ("agent", "supervisor")),
    (Capability.END_CALLS, ("agent", "supervisor", "manager", "admin")),
    (Capability.SUPERVISE_CALLS, ("supervisor", "manager", "admin")),
    (Capability.READ_RESTRICTION_REASONS, ("supervisor", "manager", "admin")),
    (Capability.REVIEW_CALLS, ("supervisor", "manager", "admin")),
    # Policy 5.2: all decisions to restrict contact are the manager's.
    (Capability.DECIDE_RESTRICTIONS, ("manager",)),
])
def test_each_capability_belongs_to_these_roles(capability, roles):
    assert roles_with(capability) == roles
    for role in Role:
        assert may(role.value, capability) is (role.value in roles)


@pytest.mark.parametrize("role", [None, "", "owner", "Manager"])
def test_an_unknown_role_may_do_nothing(role):
    assert not any(may(role, capability) for capability in Capability)
