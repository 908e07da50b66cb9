"""The Twilio API mock's own plumbing: where its spec comes from, and what a failed start leaves."""

from __future__ import annotations

import gc
import json
import os
import warnings
from pathlib import Path

import pytest

from tests.support import twilio_mock
from tests.support.twilio_mock import PROJECT_ROOT, PrismMock, PrismUnavailable


def _open_descriptors() -> set[str]:
    """Return this process's open file descriptors."""
    return set(os.listdir("/proc/self/fd"))


def test_a_mock_that_cannot_start_leaves_no_file_open(tmp_path: Path) -> None:
    before = _open_descriptors()
    # A file left open is closed by the garbage collector with a ResourceWarning, which
    # filterwarnings=error turns into an error at the end of the session; record it here instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(PrismUnavailable, match="spec is missing"):
            PrismMock.started(spec=tmp_path / "missing.json")
        gc.collect()

    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert _open_descriptors() == before


@pytest.mark.parametrize(
    ("name", "a_path"),
    [
        ("twilio_api_v2010.json", "/2010-04-01/Accounts/{AccountSid}/Calls.json"),
        ("twilio_taskrouter_v1.json", "/v1/Workspaces/{WorkspaceSid}/Tasks"),
    ],
)
def test_twilios_specs_come_from_the_pinned_package_inside_the_project(
    name: str, a_path: str
) -> None:
    spec = twilio_mock.ensure_twilio_spec(name)

    assert spec.resolve().is_relative_to(PROJECT_ROOT / ".tools")
    assert twilio_mock.TWILIO_SPEC.resolve().is_relative_to(PROJECT_ROOT)
    document = json.loads(spec.read_text())
    assert document["openapi"].startswith("3.")
    assert a_path in document["paths"]
