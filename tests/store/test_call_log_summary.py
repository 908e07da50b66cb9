"""What each kind of call event sets on the call's summary row."""

import pytest

from callflow.events import EventKind
from store.call_log import summary_changes
from tests.conftest import NOW


@pytest.mark.parametrize(("kind", "key", "detail", "changes"), [
    (EventKind.RECEIVED, "received", {"from": "+447700900123", "to": "", "withheld": False},
     {"from_number": "+447700900123", "to_number": None, "withheld": False}),
    (EventKind.LOOKUP, "lookup", {"entry_id": 7, "failed": True},
     {"entry_id": 7, "lookup_failed": True}),
    (EventKind.DECISION, "decision", {"outcome": "centre"}, {"decision": "centre"}),
    (EventKind.DECISION, "menu:2", {"outcome": "centre"}, {}),
    (EventKind.EMERGENCY, "emergency", {}, {"emergency": True}),
    (EventKind.CONNECTED, "connected:4", {"staff_id": 4}, {"agent_id": 4}),
    (EventKind.VOICEMAIL, "voicemail:RE1", {"recording_url": ""},
     {"voicemail": True, "recording_url": None}),
    (EventKind.WARNING, "warning:1", {}, {"warned": True}),
    (EventKind.ENDED_BY_AGENT, "ended_by_agent", {}, {"ended_by_agent": True}),
    (EventKind.INCIDENT, "incident:3", {}, {"incident": True}),
    (EventKind.DIALLED, "dialled:4:0", {"staff_id": 4}, {}),
    ("something_new", "x", {"a": 1}, {}),
])
def test_each_kind_sets_its_own_columns(kind, key, detail, changes):
    assert summary_changes(kind, key, NOW, detail) == changes


def test_kinds_read_back_from_the_stream_as_text_dispatch_the_same_way():
    assert summary_changes("emergency", "emergency", NOW, {}) == {"emergency": True}
