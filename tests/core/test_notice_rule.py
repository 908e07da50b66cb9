"""When a change to a restriction needs a new notice to the customer (policy 5.1)."""

from __future__ import annotations

import pytest

from callflow.notices import needs_new_notice


@pytest.mark.parametrize(("changes", "needed"), [
    (["call_windows"], True),
    (["staff_notes", "designated_contact"], True),
    (["staff_notes"], False),
    ([], False),
])
def test_only_changes_the_customer_was_told_about_need_a_new_notice(changes, needed):
    assert needs_new_notice(changes) is needed

