"""`callflow subject-access REF`: everything held about a person, as JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner

from callflow.register import parse_entry
from callflow.reviews import ReviewDecision, ReviewOutcome
from service.cli import subject_access_command
from store.db import transaction
from store.models import DeadLetter, Incident, Proposal
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry, entry_form
from usecases.appeals import record_appeal
from usecases.notices import Notices
from usecases.reviews import record_review


@pytest.fixture
def cli(services, monkeypatch):
    from service import cli as service_cli

    monkeypatch.setattr(service_cli, "services", lambda: services)

    @click.group()
    def main() -> None:
        """A stand-in for the callflow group the command is attached to."""

    main.add_command(subject_access_command)
    return lambda *args: CliRunner().invoke(main, list(args))


def test_subject_access_prints_entries_audit_calls_events_notices_proposals_incidents(
        cli, services, staff):
    result = add_entry(services)
    moved, _ = parse_entry(entry_form(phone_numbers="07700 900124"))
    services.register.save(moved, "manager@example.org", NOW, TODAY)
    Notices(services.register, services.settings).produce_restriction(
        "QL-1", staff["manager"].id, NOW, TODAY)
    earlier = add_call(services, NOW - timedelta(days=40), "+447700900123",
                       events=(("received", {"from": "+447700900123", "withheld": False}),))
    tagged = add_call(services, NOW, "+447700900124", entry_id=result.entry_id,
                      agent_id=staff["agent"].id)
    add_call(services, NOW, "+447700900999")
    with transaction(services.sessions) as session:
        session.add(Proposal(customer_ref="QL-1", phone_number="+447700900123", reason="abuse",
                             proposed_by_id=staff["agent"].id, proposed_at=NOW))
        session.add(Incident(call_sid=tagged, reported_by_id=staff["agent"].id, reported_at=NOW,
                             category="threat", police_reference="DUR-9"))
        for n, (sid, fields) in enumerate((
                ("CA" + "d1" * 16, '{"events":"[{\\"from\\":\\"+447700900123\\"}]"}'),
                (tagged, "{}"), ("CA" + "d3" * 16, '{"from":"+447700900999"}'))):
            session.add(DeadLetter(stream_id=f"1-{n}", call_sid=sid, fields=fields,
                                   error_type="DataError", error="refused", failed_at=NOW))

    outcome = cli("subject-access", "QL-1")
    assert outcome.exit_code == 0, outcome.output
    record = json.loads(outcome.output)
    assert record["customer_ref"] == "QL-1"
    assert record["numbers"] == ["+447700900124", "+447700900123"]
    (entry,) = record["entries"]
    assert entry["name"] == "Pat Example" and entry["phone_numbers"] == ["+447700900124"]
    assert entry["decided_by"] == "manager@example.org"
    assert [a["action"] for a in record["audit"]] == ["created", "updated"]
    assert [c["call_sid"] for c in record["calls"]] == [earlier, tagged]
    assert record["calls"][0]["events"][0]["kind"] == "received"
    assert record["calls"][1]["agent"] == "Agent"
    assert [n["kind"] for n in record["notices"]] == ["restriction"]
    assert "Dear Pat Example" in record["notices"][0]["body"]
    assert [p["reason"] for p in record["proposals"]] == ["abuse"]
    assert [i["police_reference"] for i in record["incidents"]] == ["DUR-9"]
    assert sorted(d["call_sid"] for d in record["call_events_set_aside"]) == sorted(
        ["CA" + "d1" * 16, tagged]), "set-aside events by the person's number or call, no others"


def test_a_reference_nothing_is_held_under_says_so(cli, staff):
    outcome = cli("subject-access", "QL-404")
    assert outcome.exit_code == 1 and "nothing is held under QL-404" in outcome.output


def test_subject_access_includes_reviews_and_appeals(cli, services, staff):
    add_entry(services)
    next_review = TODAY + timedelta(days=90)
    record_review(services.register, services.settings, "QL-1", "manager@example.org",
                  ReviewDecision(ReviewOutcome.CONTINUE, "Still needed", next_review), NOW, TODAY)
    record_appeal(services.register, services.settings, "QL-1", "supervisor@example.org",
                  {"received_on": "2026-11-30", "channel": "phone", "grounds": "Unfair"},
                  NOW, TODAY)
    held = json.loads(cli("subject-access", "QL-1").output)
    (review,) = held["reviews"]
    assert (review["outcome"], review["reasons"], review["reviewed_by"]) == (
        "continue", "Still needed", "Manager")
    (appeal,) = held["appeals"]
    assert (appeal["channel"], appeal["grounds"], appeal["recorded_by"], appeal["decided_by"]) == (
        "phone", "Unfair", "Supervisor", None)
    assert [n["kind"] for n in held["notices"]] == ["review_outcome", "appeal_received"]
