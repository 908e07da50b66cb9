"""The call log pages: filtering, paging, a call's timeline, and the streamed CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from console.workspace import calls as ws
from tests.conftest import NOW
from tests.workspace import add_call, add_entry, text_of

RECEIVED = ("received", {"from": "+447700900123", "withheld": False})


def test_the_log_shows_calls_newest_first_in_london_time(supervisor, services):
    add_call(services, datetime(2026, 7, 1, 23, 30, tzinfo=UTC), decision="centre")
    add_call(services, NOW, decision="written_only")
    page = text_of(supervisor.get("/workspace/calls"))
    assert page.index("Tue 1 Dec 2026, 10am") < page.index("Thu 2 Jul 2026, 12:30am")
    assert "Written only" in page and "Centre (not restricted)" in page


def test_a_number_typed_any_way_finds_the_callers_calls(supervisor, services):
    add_call(services, NOW, "+447700900123")
    add_call(services, NOW, "+447700900999")
    page = supervisor.get("/workspace/calls", query_string={"number": "07700 900123"})
    assert page.status_code == 200
    assert page.get_data(as_text=True).count("07700 900123") >= 1
    assert "07700 900999" not in page.get_data(as_text=True)


def test_a_bad_filter_says_which_field_is_wrong_and_shows_no_calls(supervisor, services):
    add_call(services, NOW)
    page = supervisor.get("/workspace/calls", query_string={
        "number": "12345", "from": "2026-12-05", "to": "2026-12-01", "person": "QL-404"})
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert re.search(r'id="error-number">.*cannot be a real number', html)
    assert 'id="error-to">must not be before the start date' in html
    assert 'id="error-person">no register entry QL-404' in html
    assert 'id="call-log"' not in html


def test_a_person_filter_and_flags_combine_and_paging_keeps_the_filter(supervisor, services,
                                                                       monkeypatch):
    result = add_entry(services)
    for n in range(5):
        add_call(services, NOW - timedelta(minutes=n), entry_id=result.entry_id, warned=n % 2 == 0)
    add_call(services, NOW, "+447700900555", warned=True)
    monkeypatch.setattr(ws.q, "call_page", _sized(ws.q.call_page, 2))
    first = supervisor.get("/workspace/calls", query_string={"person": "QL-1", "mark": "warned"})
    html = first.get_data(as_text=True)
    assert html.count('href="/workspace/calls/CA') == 2
    older = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "person=QL-1" in older and "mark=warned" in older and "after=" in older
    second = supervisor.get("/workspace/calls" + older).get_data(as_text=True)
    assert second.count('href="/workspace/calls/CA') == 1
    assert 'rel="prev"' in second and 'rel="next"' not in second


def _sized(call_page, size):
    def sized(*args, **kwargs):
        kwargs.setdefault("size", size)
        return call_page(*args, **kwargs)
    return sized


def test_a_forged_page_cursor_is_refused(supervisor):
    assert supervisor.get("/workspace/calls?after=not-a-cursor").status_code == 400


def test_a_calls_timeline_reads_as_what_happened_in_local_time(supervisor, services, staff):
    result = add_entry(services, customer_ref="QL-7")
    alex = staff["agent"].id
    sid = add_call(services, NOW, decision="designated_contact", entry_id=result.entry_id,
                   agent_id=alex, warned=True, ended_by_agent=True,
                   recording_url="https://api.twilio.com/recordings/RE1", events=(
        RECEIVED,
        ("lookup", {"source": "cache", "failed": False, "entry_id": result.entry_id}),
        ("decision", {"outcome": "designated_contact",
                      "reason": "register entry 1: to the designated point of contact (4.6)"}),
        ("dialled", {"staff_id": alex, "leg": "designated"}),
        ("connected", {"staff_id": alex, "leg": "designated"}),
        ("warning", {"staff_id": alex}),
        ("ended_by_agent", {"staff_id": alex, "reason": "abuse continued",
                            "note": "swore at agent"}),
        ("voicemail", {"recording_url": "https://api.twilio.com/recordings/RE1",
                       "duration": "12"}),
        ("status", {"status": "completed", "duration": 95}),
    ))
    page = supervisor.get(f"/workspace/calls/{sid}")
    assert page.status_code == 200
    steps = re.findall(r'<li class="step k-(\w+)', page.get_data(as_text=True))
    assert steps == ["received", "lookup", "decision", "dialled", "connected", "warning",
                     "ended_by_agent", "voicemail", "status"]
    text = text_of(page)
    for expected in ("Tue 1 Dec 2026, 10:00:00am Call received — from 07700 900123",
                     "Register checked — on the register: QL-7",
                     "Decision: Designated contact — to the designated point of contact",
                     "Connected to Agent — as the designated contact", "Warning given by Agent",
                     "Ended by the agent: abuse continued — Agent; note: swore at agent",
                     "Voicemail left — 12 seconds", "Call completed — 95 seconds"):
        assert expected in text, expected
    assert "register entry" not in text and "(from the cache)" not in text
    assert 'href="https://api.twilio.com/recordings/RE1"' in page.get_data(as_text=True)


def test_a_recording_link_that_is_not_a_web_address_is_not_rendered(supervisor, services):
    sid = add_call(services, NOW, voicemail=True, recording_url="javascript:alert(1)",
                   events=(("voicemail", {"recording_url": "javascript:alert(1)"}),))
    assert "javascript:" not in supervisor.get(f"/workspace/calls/{sid}").get_data(as_text=True)


def test_an_unknown_call_is_not_found(supervisor):
    assert supervisor.get("/workspace/calls/CA" + "0" * 32).status_code == 404


def test_the_export_is_streamed_in_chunks_with_the_filter_applied(supervisor, services,
                                                                  monkeypatch):
    monkeypatch.setattr(ws, "CSV_FLUSH_ROWS", 3)
    for n in range(10):
        add_call(services, NOW - timedelta(minutes=n), decision="written_only", warned=n < 7)
    add_call(services, NOW, decision="centre", warned=True)
    response = supervisor.get("/workspace/calls.csv", query_string={
        "decision": "written_only", "mark": "warned"}, buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="calls-')
    chunks = list(response.response)
    # The header goes out before the first batch is read, then a chunk per three rows.
    assert len(chunks) == 1 + 3
    rows = list(csv.DictReader(io.StringIO("".join(
        c.decode() if isinstance(c, bytes) else c for c in chunks))))
    assert len(rows) == 7
    assert {r["decision"] for r in rows} == {"written_only"}
    assert rows[0]["started"] == "2026-12-01T10:00:00+00:00"
    assert rows[0]["from_number"] == "+447700900123"


def test_the_export_writes_formula_like_cells_as_text(supervisor, services, staff):
    from store.db import transaction
    from store.models import Staff

    with transaction(services.sessions) as session:
        session.get(Staff, staff["agent"].id).name = "=HYPERLINK(\"http://evil\")"
    add_call(services, NOW, agent_id=staff["agent"].id)
    body = supervisor.get("/workspace/calls.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in body and ",+447700900123," in body


def test_an_export_with_a_bad_filter_says_why(supervisor):
    response = supervisor.get("/workspace/calls.csv?number=12")
    assert response.status_code == 400 and b"number" in response.data


# --- hostile filter values: a field error naming the filter, never a 500 --------------------------

FILTER_LABELS = {
    "from": "From date", "to": "To date", "number": "Number",
    "person": "Person of interest (reference)", "decision": "Decision", "agent": "Agent",
}
HOSTILE = {
    "nul": "%00",
    "nul inside": "QL-1%00x",
    "long": "9" * 5000,
    "not utf-8": "%ff%fe",
    "control": "%1b%5b2J",
}
HOSTILE_DATES = ["2026-13-45", "9999-12-31", "0001-01-01", "31/02/2026", "2026-12-01T00:00"]
HOSTILE_AGENTS = ["\N{SUPERSCRIPT TWO}", "\N{ARABIC-INDIC DIGIT ONE}", "99999999999999999999",
                  "-1", "1.5"]


def _hostile(name: str) -> list[str]:
    values = list(HOSTILE.values())
    if name in ("from", "to"):
        values += [quote(value) for value in HOSTILE_DATES]
    if name == "agent":
        values += [quote(value) for value in HOSTILE_AGENTS]
    return values


@pytest.mark.parametrize("name", FILTER_LABELS)
def test_a_hostile_filter_value_is_a_field_error_naming_the_filter(supervisor, services, name):
    add_call(services, NOW)
    for raw in _hostile(name):
        page = supervisor.get(f"/workspace/calls?{name}={raw}")
        assert page.status_code == 400, raw
        html = page.get_data(as_text=True)
        assert f'id="error-{name}">' in html, raw
        assert 'id="call-log"' not in html and "\x00" not in html, raw
        export = supervisor.get(f"/workspace/calls.csv?{name}={raw}")
        assert export.status_code == 400 and export.mimetype == "text/plain", raw
        body = export.get_data(as_text=True)
        assert body.startswith(f"{FILTER_LABELS[name]}: "), (raw, body)
        assert "\x00" not in body and len(body) < 300, raw


def test_a_hostile_page_cursor_is_refused_not_a_500(supervisor):
    for cursor in ("\N{SUPERSCRIPT TWO}.1", "1.\N{SUPERSCRIPT TWO}", "9" * 40 + ".1",
                   "1." + "9" * 40, "%00.1", "-" + "9" * 30 + ".1"):
        for direction in ("after", "before"):
            response = supervisor.get(f"/workspace/calls?{direction}={cursor}")
            assert response.status_code == 400, (direction, cursor)
