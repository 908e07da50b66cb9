"""The console page takes end reasons and call states from the core; nothing else spells them."""

from __future__ import annotations

import html
import json
from pathlib import Path

from callflow.call_state import CallState
from callflow.ending import INCIDENT_MENU, WRAP_UP_REASONS, EndReason, EndRefusal
from callflow.roles import Role
from console.openapi import openapi_document
from tests.support.web_client import sign_in

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"


def test_the_console_offers_the_cores_reasons_with_their_labels(client):
    sign_in(client, "alex@example.org")
    page = client.get("/console")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for reason in INCIDENT_MENU:
        assert f'<option value="{reason}">{html.escape(reason.label)}</option>' in text
    for reason in WRAP_UP_REASONS:
        assert f'name="reason" value="{reason}" required> {html.escape(reason.label)}' in text
    assert f'data-reason="{EndReason.THREAT_OR_VIOLENCE}"' in text
    assert f'data-not-warned="{EndRefusal.NOT_WARNED}"' in text
    states = json.loads(html.unescape(text.split('data-call-states="', 1)[1].split('"', 1)[0]))
    assert states == {state.name: state.value for state in CallState}


def test_no_reason_is_spelled_in_the_console_script_or_template():
    for name in ("static/console.js", "templates/console.html"):
        source = (CONSOLE_DIR / name).read_text()
        for reason in EndReason:
            assert reason.value not in source, f"{name} spells {reason.value}"


def test_the_console_script_compares_call_states_through_the_cores_list():
    source = (CONSOLE_DIR / "static/console.js").read_text()
    for state in CallState:
        assert f'state === "{state}"' not in source and f'state !== "{state}"' not in source
        assert f'state = "{state}"' not in source and f'state: "{state}"' not in source


def test_the_openapi_enums_are_the_cores():
    schemas = openapi_document("https://example.org")["components"]["schemas"]
    assert schemas["EndCall"]["properties"]["reason"]["enum"] == [r.value for r in EndReason]
    assert schemas["IncidentReport"]["properties"]["category"]["enum"] == [
        r.value for r in EndReason]
    assert schemas["WrapUp"]["properties"]["reason"]["enum"] == [
        r.value for r in WRAP_UP_REASONS]
    assert schemas["Me"]["properties"]["staff"]["properties"]["role"]["enum"] == [
        r.value for r in Role]
