"""Tests of the supervisors' and managers' workspace; helpers they (and the browser tests) share."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, timedelta

from flask.testing import FlaskClient

from callflow.register import parse_entry
from console.auth import session_store
from console.sessions import COOKIE_NAME
from store.db import transaction
from store.models import Call, CallEvent
from tests.conftest import NOW, TODAY

_sids = itertools.count(1)


def entry_form(**changes: str) -> dict[str, str]:
    """The fields of a valid written-only entry, as the register's text columns."""
    row = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Repeated abuse of staff on the phone",
        "written_only": "yes", "decided_by": "manager@example.org",
        "decided_on": "2026-11-20", "starts_on": "2026-11-25", "ends_on": "2027-05-31",
        "review_on": "2027-03-01",
        "evidence": "written: letter of 3 November about calls to staff",
        "no_warning_reason": "threats of violence to staff (policy 4.3)",
    }
    row.update(changes)
    return row


def add_entry(services, **changes: str):
    """Save an entry through the register service, as a manager would."""
    fields, errors = parse_entry(entry_form(**changes))
    assert not errors, errors
    return services.register.save(fields, "manager@example.org", NOW, TODAY)


def add_call(services, started_at: datetime, from_number: str | None = "+447700900123",
             events: tuple[tuple[str, dict], ...] = (), **columns) -> str:
    """Insert a call's summary row (and any events) directly, as the pump would leave it."""
    sid = columns.pop("call_sid", None) or f"CA{next(_sids):032x}"
    with transaction(services.sessions) as session:
        session.add(Call(call_sid=sid, started_at=started_at, from_number=from_number,
                         withheld=from_number is None, **columns))
        for n, (kind, detail) in enumerate(events):
            session.add(CallEvent(event_key=f"{sid}:{kind}:{n}", call_sid=sid, kind=kind,
                                  at=started_at + timedelta(seconds=n), detail=detail))
    return sid


def csrf_of(client: FlaskClient, services) -> str:
    """The CSRF token of the client's server-side session."""
    cookie = client.get_cookie(COOKIE_NAME)
    live = session_store(services).load(cookie.value, NOW, touch=False)
    return live.csrf


def post(client: FlaskClient, services, url: str, data: dict | None = None, **kwargs):
    """A form post carrying the session's CSRF token, as the pages' forms do."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf_of(client, services)},
                       **kwargs)


def text_of(response) -> str:
    """A page's text without tags or repeated whitespace, for reading assertions."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def day(n: int) -> date:
    """TODAY moved by n days."""
    return TODAY + timedelta(days=n)
