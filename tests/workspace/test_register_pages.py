"""Managing the register in the browser: create, edit, lift, review, history, and the queue."""

from __future__ import annotations

import re
from html import unescape
from unittest.mock import ANY

import pytest
import redis
from sqlalchemy import func, select

from store.db import transaction
from store.models import AuditRecord, Incident, Notice, Proposal, RegisterEntry
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry, day, post, text_of

FORM = {
    "customer_ref": "QL-20", "name": "Chris Sample", "phone_numbers": "07700 900456\n0191 496 0456",
    "categories": ["unreasonable_persistence"], "reason": "Daily calls about a closed complaint",
    "call_windows": "Tue,Thu 10:00-12:00", "designated_contact": "alex@example.org",
    "fallback": "voicemail", "closed_issues": "CMP-9: Kitchen refit",
    "decided_by": "manager@example.org", "decided_on": "2026-12-01", "starts_on": "2026-12-01",
    "ends_on": "2027-06-01", "review_on": "2027-03-01",
    "evidence": "written: letters of 1 and 8 November", "no_warning_reason": "threats to staff",
}


def entry_of(services, ref):
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == ref))
        return entry, [p.number for p in entry.phones] if entry else []


def audit_of(services, ref):
    with services.sessions() as session:
        return session.scalars(select(AuditRecord).where(AuditRecord.customer_ref == ref)
                               .order_by(AuditRecord.id)).all()


def test_a_new_entry_with_a_mistake_is_shown_again_with_field_messages_then_saved(
        manager, services):
    services.register.rebuild_cache(TODAY)
    # What the form cannot read is reported field by field ...
    unreadable = {**FORM, "phone_numbers": "07700 900456\n12345", "reason": ""}
    response = post(manager, services, "/workspace/register/new", unreadable)
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert 'id="error-phone_numbers">\'12345\' cannot be a real number' in html
    assert 'id="error-reason">is required' in html
    assert 'id="f-name" name="name" type="text" value="Chris Sample"' in html  # kept as typed
    assert "07700 900456\n12345</textarea>" in html
    # ... and the register's rules, as the import applies them.
    against_rules = {**FORM, "ends_on": "2026-11-01", "designated_contact": "", "fallback": "",
                     "call_windows": ""}
    response = post(manager, services, "/workspace/register/new", against_rules)
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert 'id="error-ends_on">must be after the start date (policy 5.1: say how long)' in html
    assert 'id="error-written_only">no form of contact is left (policy 4.1)' in html
    assert 'aria-invalid="true" aria-describedby="error-ends_on"' in html
    assert entry_of(services, "QL-20")[0] is None

    response = post(manager, services, "/workspace/register/new", FORM)
    assert response.status_code == 303
    assert response.headers["Location"] == "/workspace/register/QL-20"
    entry, numbers = entry_of(services, "QL-20")
    assert numbers == ["+447700900456", "+441914960456"]
    assert entry.call_windows == "Tue,Thu 10:00-12:00" and entry.designated_contact_id
    assert entry.notice_sent_on is None
    assert [a.action for a in audit_of(services, "QL-20")] == ["created"]
    assert audit_of(services, "QL-20")[0].actor == "manager@example.org"
    # The call path's routing cache hears of it at once.
    assert services.routing_cache.fetch("+447700900456") == (True, ANY)
    assert services.routing_cache.fetch("+447700900456")[1].entry_id == entry.id
    # policy 5.1: the letter is produced as the entry is made.
    with services.sessions() as session:
        assert session.scalar(select(Notice.kind).where(Notice.customer_ref == "QL-20")) == \
            "restriction"
    page = text_of(manager.get("/workspace/register/QL-20"))
    assert "A notice has been produced" in page
    assert "No notice has been sent for the current arrangements" in page


def test_every_problem_in_every_field_is_shown_at_once(manager, services):
    mistakes = {**FORM, "phone_numbers": "12345", "ends_on": "2026-11-01", "categories": [],
                "review_on": "someday", "designated_contact": "", "call_windows": ""}
    response = post(manager, services, "/workspace/register/new", mistakes)
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    shown = sorted(set(re.findall(r'<p class="field-error" id="error-(\w+)">', html)))
    assert shown == ["categories", "ends_on", "fallback", "phone_numbers", "review_on",
                     "written_only"]


def test_values_longer_than_the_register_keeps_are_field_errors_not_a_server_error(manager,
                                                                                   services):
    too_long = {**FORM, "name": "N" * 250, "customer_ref": "R" * 83, "call_windows": "x" * 501}
    response = post(manager, services, "/workspace/register/new", too_long)
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    assert 'id="error-name">Name must be 200 characters or fewer' in html
    assert 'id="error-customer_ref">Customer reference must be 64 characters or fewer' in html
    assert 'id="error-call_windows">Call windows must be 500 characters or fewer' in html
    with services.sessions() as session:
        assert session.scalar(select(func.count(RegisterEntry.id))) == 0


def test_the_entry_form_cannot_lift_an_entry(manager, services):
    lifting = {**FORM, "lifted_at": "2026-12-01T10:00:00+00:00",
               "lifted_by": "manager@example.org", "lifted_reason": "sneaked in"}
    assert post(manager, services, "/workspace/register/new", lifting).status_code == 303
    entry, _ = entry_of(services, "QL-20")
    assert entry.lifted_at is None


def test_a_reference_already_on_the_register_is_refused_rather_than_overwritten(manager,
                                                                               services):
    add_entry(services, customer_ref="QL-20", phone_numbers="07700 900999")
    response = post(manager, services, "/workspace/register/new", FORM)
    assert response.status_code == 422
    assert "QL-20 is already on the register; edit that entry instead" in response.get_data(
        as_text=True)


def test_editing_the_arrangements_audits_the_change_and_asks_for_a_new_notice(manager,
                                                                               services):
    add_entry(services, notice_sent_on="2026-11-25")
    form = manager.get("/workspace/register/QL-1/edit").get_data(as_text=True)
    assert 'value="QL-1"' in form and "readonly" in form
    changed = {"name": "Pat Example", "phone_numbers": "07700 900123", "categories":
               ["aggressive_abusive"], "reason": "Repeated abuse of staff on the phone",
               "written_only": "", "call_windows": "Mon 09:00-10:00",
               "decided_by": "manager@example.org", "decided_on": "2026-11-20",
               "starts_on": "2026-11-25", "ends_on": "2027-05-31", "review_on": "2027-03-01",
               "customer_ref": "QL-999"}  # the reference in the form is ignored when editing
    response = post(manager, services, "/workspace/register/QL-1/edit", changed)
    assert response.status_code == 303, response.get_data(as_text=True)
    entry, _ = entry_of(services, "QL-1")
    assert entry.call_windows == "Mon 09:00-10:00" and not entry.written_only
    assert entry.notice_sent_on is None
    last = audit_of(services, "QL-1")[-1]
    assert (last.action, last.changes["call_windows"], last.changes["written_only"]) == (
        "updated", ["", "Mon 09:00-10:00"], ["yes", "no"])
    assert entry_of(services, "QL-999")[0] is None
    page = text_of(manager.get("/workspace/register/QL-1"))
    assert "a new notice has been produced" in page
    assert "Call windows : Mon 09:00-10:00" in page  # the history shows before and after


def test_changing_only_staff_notes_keeps_the_notice_date(manager, services):
    add_entry(services, notice_sent_on="2026-11-25")
    form = {"name": "Pat Example", "phone_numbers": "07700 900123",
            "categories": ["aggressive_abusive"], "reason": "Repeated abuse of staff on the phone",
            "written_only": "yes", "decided_by": "manager@example.org",
            "decided_on": "2026-11-20", "starts_on": "2026-11-25", "ends_on": "2027-05-31",
            "review_on": "2027-03-01", "staff_notes": "Prefers letters to the PO box"}
    assert post(manager, services, "/workspace/register/QL-1/edit", form).status_code == 303
    entry, _ = entry_of(services, "QL-1")
    assert entry.notice_sent_on.isoformat() == "2026-11-25"
    with services.sessions() as session:
        assert session.scalar(select(func.count(Notice.id))) == 0


def test_lifting_needs_a_reason_and_then_routes_the_caller_as_normal(manager, services):
    add_entry(services)
    services.register.rebuild_cache(TODAY)
    assert services.routing_cache.fetch("+447700900123")[1] is not None
    refused = post(manager, services, "/workspace/register/QL-1/lift", {"reason": "  "})
    assert refused.status_code == 422
    assert 'id="error-reason">say why the entry is lifted' in refused.get_data(as_text=True)
    assert entry_of(services, "QL-1")[0].lifted_at is None

    lifted = post(manager, services, "/workspace/register/QL-1/lift",
                  {"reason": "Behaviour improved after meeting"})
    assert lifted.status_code == 303
    entry, _ = entry_of(services, "QL-1")
    assert entry.lifted_at == NOW and entry.lifted_reason == "Behaviour improved after meeting"
    assert services.routing_cache.fetch("+447700900123") == (True, None)
    page = text_of(manager.get("/workspace/register/QL-1"))
    assert "lifted" in page and "Behaviour improved after meeting" in page
    assert "Lift QL-1" not in page and "Edit" not in page


def test_a_review_records_its_outcome_and_next_date_without_a_new_restriction_notice(
        manager, services):
    add_entry(services, notice_sent_on="2026-11-25")
    refused = post(manager, services, "/workspace/register/QL-1/review",
                   {"outcome": "continue", "review_on": TODAY.isoformat(), "reasons": ""})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "the next review must be after today" in html and "say why you decided this" in html
    assert 'id="error-summary"' in html

    kept = post(manager, services, "/workspace/register/QL-1/review",
                {"outcome": "continue", "review_on": "2027-04-01",
                 "reasons": "Calls have reduced but letters remain abusive"})
    assert kept.status_code == 303
    entry, _ = entry_of(services, "QL-1")
    assert entry.review_on.isoformat() == "2027-04-01"
    assert entry.notice_sent_on.isoformat() == "2026-11-25"  # the date alone: no new notice
    actions = [(a.action, a.changes) for a in audit_of(services, "QL-1")]
    assert actions[-1] == ("reviewed", {
        "review_outcome": ["", "continue"],
        "review_reasons": ["", "Calls have reduced but letters remain abusive"],
        "review_on": ["2027-03-01", "2027-04-01"]})
    with services.sessions() as session:
        kinds = session.scalars(select(Notice.kind).order_by(Notice.id)).all()
    assert kinds == ["review_outcome"]
    page = text_of(manager.get("/workspace/register/QL-1"))
    assert "Continue the restriction unchanged" in page and "Review outcome letter" in page

    varied = post(manager, services, "/workspace/register/QL-1/review",
                  {"outcome": "vary", "review_on": "2027-04-15",
                   "reasons": "Calls are fine; letters still abusive"})
    assert varied.status_code == 303
    assert varied.headers["Location"].endswith("/workspace/register/QL-1/edit")


def test_the_entry_page_shows_its_audit_history_newest_first(supervisor, services):
    add_entry(services)
    services.register.lift("QL-1", "manager@example.org", "Moved away", NOW)
    html = supervisor.get("/workspace/register/QL-1").get_data(as_text=True)
    history = re.findall(r'<tr class="audit-(\w+)">', html)
    assert history == ["lifted", "created"]
    assert "Tue 1 Dec 2026, 10am" in text_of(supervisor.get("/workspace/register/QL-1"))


def test_the_register_list_filters_by_status_and_flags_what_needs_doing(supervisor, services):
    add_entry(services, customer_ref="QL-1", review_on=day(7).isoformat())
    add_entry(services, customer_ref="QL-2", phone_numbers="07700 900456",
              notice_sent_on="2026-11-25")
    add_entry(services, customer_ref="QL-3", phone_numbers="07700 900789")
    services.register.lift("QL-3", "manager@example.org", "Resolved", NOW)
    current = text_of(supervisor.get("/workspace/register"))
    assert "QL-1" in current and "QL-2" in current and "QL-3" not in current
    assert re.search(r"QL-1 Pat Example Active .* due not sent", current)
    lifted = text_of(supervisor.get("/workspace/register?status=lifted"))
    assert "QL-3" in lifted and "QL-1" not in lifted
    assert "QL-2" in text_of(supervisor.get("/workspace/register?status=all&q=ql-2"))


@pytest.fixture
def queued(services, staff):
    sid = add_call(services, NOW, "+447700900321", warned=True, incident=True)
    with transaction(services.sessions) as session:
        proposal = Proposal(call_sid=sid, phone_number="+447700900321", customer_ref="QL-55",
                            categories=["aggressive_abusive"], reason="Threatened the agent",
                            proposed_by_id=staff["agent"].id, proposed_at=NOW)
        other = Proposal(phone_number="+447700900322", customer_ref="QL-56",
                         categories=["unreasonable_demands"], reason="Wants daily callbacks",
                         proposed_by_id=staff["agent2"].id, proposed_at=NOW)
        incident = Incident(call_sid=sid, reported_by_id=staff["agent"].id, reported_at=NOW,
                            category="threat", police_reference="DUR-1", notes="Threat to visit")
        session.add_all([proposal, other, incident])
        session.flush()
        return {"proposal": proposal.id, "other": other.id, "incident": incident.id, "sid": sid}


def test_the_queue_shows_proposals_and_incidents_and_a_manager_decides_them(manager, services,
                                                                             queued):
    page = text_of(manager.get("/workspace/queue"))
    assert "Threatened the agent" in page and "Threat to visit" in page and "DUR-1" in page

    form = manager.get(f"/workspace/register/new?proposal={queued['proposal']}")
    html = form.get_data(as_text=True)
    assert 'value="QL-55"' in html and "+447700900321</textarea>" in html
    assert 'value="aggressive_abusive"\n        checked' in html or re.search(
        r'value="aggressive_abusive"\s+checked', html)
    created = post(manager, services, "/workspace/register/new", {
        **FORM, "customer_ref": "QL-55", "phone_numbers": "+447700900321",
        "reason": "Threatened the agent", "proposal": str(queued["proposal"])})
    assert created.status_code == 303

    declined = post(manager, services, f"/workspace/proposals/{queued['other']}/decline",
                    {"note": "One call only; a warning letter is enough"})
    assert declined.status_code == 303
    resolved = post(manager, services, f"/workspace/incidents/{queued['incident']}/resolve",
                    {"resolution": "Reported to police; entry made"})
    assert resolved.status_code == 303
    with services.sessions() as session:
        accepted = session.get(Proposal, queued["proposal"])
        entry_id = session.scalar(select(RegisterEntry.id)
                                  .where(RegisterEntry.customer_ref == "QL-55"))
        assert (accepted.status, accepted.entry_id) == ("accepted", entry_id)
        assert session.get(Proposal, queued["other"]).status == "declined"
        incident = session.get(Incident, queued["incident"])
        assert (incident.status, incident.resolution) == ("resolved",
                                                          "Reported to police; entry made")
    assert "Reported to police; entry made" in text_of(manager.get("/workspace/queue"))


def test_a_proposal_can_lead_to_a_warning_letter_instead(manager, services, queued):
    form = manager.get(f"/workspace/notices/warning?proposal={queued['proposal']}")
    assert "Threatened the agent</textarea>" in form.get_data(as_text=True)
    made = post(manager, services, "/workspace/notices/warning", {
        "customer_ref": "QL-55", "name": "Sam Caller", "categories": ["aggressive_abusive"],
        "details": "Threatened the agent", "proposal": str(queued["proposal"])})
    assert made.status_code == 303
    with services.sessions() as session:
        assert session.get(Proposal, queued["proposal"]).status == "warned"


def test_declining_a_proposal_needs_a_reason(manager, services, queued):
    post(manager, services, f"/workspace/proposals/{queued['other']}/decline", {"note": ""})
    with services.sessions() as session:
        assert session.get(Proposal, queued["other"]).status == "open"


def test_a_register_write_redis_cannot_guard_saves_nothing_and_says_so_plainly(
        manager, services, monkeypatch):
    services.register.rebuild_cache(TODAY)

    def unanswered(self):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr("store.routing_cache.RoutingCache.hold", unanswered)
    response = post(manager, services, "/workspace/register/new", FORM)
    assert response.status_code == 503
    html = unescape(response.get_data(as_text=True))
    assert "<h1>Nothing was changed</h1>" in html
    assert "Redis" not in html and "ConnectionError" not in html
    assert entry_of(services, "QL-20")[0] is None


@pytest.mark.parametrize(("url", "form", "field"), [
    ("/workspace/register/new", {**FORM, "name": "Chris\x00 Sample"}, "Name"),
    ("/workspace/register/new", {**FORM, "reason": "Daily\x00 calls"}, "Reason"),
    ("/workspace/register/QL-1/lift", {"reason": "Reviewed\x00"}, "Reason"),
    ("/workspace/register/QL\x00-1/lift", {"reason": "Reviewed"}, "Customer reference"),
])
def test_a_null_character_anywhere_in_the_register_is_a_plain_400_not_a_500(
        manager, services, url, form, field):
    add_entry(services)
    response = post(manager, services, url, form)
    assert response.status_code == 400
    assert f"{field} contains a character that cannot be typed" in text_of(response)
    assert entry_of(services, "QL-20")[0] is None
    assert entry_of(services, "QL-1")[0].lifted_at is None


def test_the_repeat_callers_page_refuses_a_date_out_of_range_plainly(supervisor):
    response = supervisor.get("/workspace/repeat-callers?to=0001-01-01")
    assert response.status_code == 400
    assert "The date must be between 2000 and 2999." in text_of(response)
