"""pytest fixtures running Twilio REST calls against a Prism mock of Twilio's OpenAPI spec."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from store.twilio_rest import build_client
from tests.support.twilio_mock import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    PrismMock,
    PrismUnavailable,
    RecordingHttpClient,
    TwilioRest,
)


@pytest.fixture(scope="session")
def prism() -> Iterator[PrismMock]:
    """Run one Prism mock of Twilio's 2010-04-01 API for the whole session.

    Without it the tests that use it fail, saying why, unless SKIP_TWILIO_MOCK=1 asks them to skip.
    """
    try:
        mock = PrismMock.started()
    except PrismUnavailable as exc:
        if os.environ.get("SKIP_TWILIO_MOCK"):
            pytest.skip(f"the Twilio API mock is unavailable (SKIP_TWILIO_MOCK is set): {exc}")
        pytest.fail(
            f"the Twilio API mock (Prism, with Twilio's OpenAPI spec) could not start: {exc}\n"
            "(SKIP_TWILIO_MOCK=1 skips the tests that need it.)"
        )
    with mock:
        yield mock


@pytest.fixture
def twilio_rest(prism: PrismMock) -> Iterator[TwilioRest]:
    """Give a test a twilio Client that talks to the mock, and the record of what it sent."""
    http = RecordingHttpClient(prism.base_url)
    try:
        yield TwilioRest(build_client(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, http_client=http), http)
    finally:
        http.session.close()
