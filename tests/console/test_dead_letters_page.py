"""The dead letters page is for those who review calls (supervisors, managers, admins)."""

from __future__ import annotations

import pytest

from tests.support.web_client import client_signed_in_as


@pytest.mark.parametrize(("email", "status"), [
    ("alex@example.org", 403),
    ("supervisor@example.org", 200),
    ("manager@example.org", 200),
])
def test_only_reviewers_see_the_dead_letters(app, email, status):
    page = client_signed_in_as(app, email).get("/workspace/dead-letters")
    assert page.status_code == status


def test_signed_out_the_page_sends_you_to_sign_in(client):
    page = client.get("/workspace/dead-letters")
    assert (page.status_code, page.headers["Location"]) == (
        303, "/signin?next=%2Fworkspace%2Fdead-letters")
