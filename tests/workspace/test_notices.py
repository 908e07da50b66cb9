"""Letters to customers (policy 4.2, 5.1): their text, their PDF, and the date they were sent."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from callflow.register import EntryInvalid
from store.models import AuditRecord, Notice, RegisterEntry
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry, post, text_of
from usecases import notices as notices_module
from usecases.notices import (
    DEFAULT_TEMPLATES,
    Notices,
    letter_pdf,
    render_letter,
    windows_text,
)


def pdf_text(data: bytes) -> str:
    """Every page's text, with runs of whitespace made single spaces."""
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


@pytest.fixture
def notices(services):
    return Notices(services.register, services.settings)


@pytest.fixture
def windowed(services):
    """An entry with call windows, a designated contact and a closed issue."""
    add_entry(services, customer_ref="QL-2", name="Chris Sample", phone_numbers="07700 900456",
              categories="unreasonable_persistence; unreasonable_demands",
              reason="You have called us several times a day about the same repair.",
              written_only="no", call_windows="Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30",
              designated_contact="alex@example.org", fallback="jo@example.org",
              closed_issues="CMP-9: Kitchen refit", review_on="2027-03-01")


def test_the_restriction_notice_says_why_how_how_long_and_how_to_challenge_it(
        manager, services, staff, windowed, notices):
    notice_id = notices.produce_restriction("QL-2", staff["manager"].id, NOW, TODAY)
    response = manager.get(f"/workspace/notices/{notice_id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = pdf_text(response.data)
    for expected in (
        "1 December 2026", "Dear Chris Sample", "Our reference: QL-2",
        # why (5.1)
        "Unreasonable persistence", "Unreasonable demands",
        "You have called us several times a day about the same repair.",
        # the arrangements (4.6): windows, designated contact and fallback, writing
        "Tuesday and Thursday, 10am to midday", "Monday to Friday, 2pm to 3:30pm",
        "Your calls will be answered by Agent", "If Agent is not available, Agent2 will take",
        "CMP-9: Kitchen refit", "You can always write to us at",
        "emergency repair",
        # how long, and the review
        "from 25 November 2026 until 31 May 2027", "We will review them by 1 March 2027",
        # how to ask for a review or complain
        "ask us to review it", "Complaints, Compliments and Compensation Policy",
        "Housing Ombudsman",
        "Manager",
    ):
        assert expected in text, expected
    assert "(3.3)" not in text  # policy paragraph numbers are for staff, not the customer


def test_a_written_only_notice_says_so_and_mentions_an_earlier_warning(services, staff,
                                                                        notices):
    add_entry(services)
    warning = notices.produce_warning("QL-1", "Pat Example", ["aggressive_abusive"],
                                      "On 2 November you swore at an adviser.",
                                      staff["manager"].id, NOW, date(2026, 11, 3))
    notices.mark_sent(warning, date(2026, 11, 3), "manager@example.org", NOW, TODAY)
    _, pdf = notices.pdf(notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY))
    text = pdf_text(pdf)
    assert "Please contact us in writing only" in text
    assert "We wrote to you on 3 November 2026" in text
    assert "take your telephone calls only at these times" not in text


def test_the_warning_letter_gives_the_chance_to_change_before_any_restriction(
        manager, services, staff):
    refused = post(manager, services, "/workspace/notices/warning",
                   {"customer_ref": "QL-77", "name": "", "details": ""})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'id="error-name">is required' in html and 'id="error-categories">' in html
    made = post(manager, services, "/workspace/notices/warning", {
        "customer_ref": "QL-77", "name": "Robin Test", "categories": ["aggressive_abusive"],
        "details": "On 28 November you shouted at an adviser and used offensive language."})
    assert made.status_code == 303
    notice_id = int(made.headers["Location"].rsplit("/", 1)[1])
    text = pdf_text(manager.get(f"/workspace/notices/{notice_id}.pdf").data)
    assert "Dear Robin Test" in text and "Aggressive, abusive or intimidating behaviour" in text
    assert "shouted at an adviser" in text
    assert "we may decide to restrict how you can contact us" in text
    assert "Housing Ombudsman" in text


def test_marking_a_notice_sent_records_it_on_the_notice_and_the_entry_with_an_audit(
        manager, services, staff, notices):
    add_entry(services)
    notice_id = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    future = post(manager, services, f"/workspace/notices/{notice_id}/sent",
                  {"sent_on": "2026-12-25"})
    assert future.status_code == 422
    assert "cannot be in the future" in future.get_data(as_text=True)
    sent = post(manager, services, f"/workspace/notices/{notice_id}/sent",
                {"sent_on": "2026-11-30"})
    assert sent.status_code == 303
    with services.sessions() as session:
        assert session.get(Notice, notice_id).sent_on == date(2026, 11, 30)
        entry = session.scalar(select(RegisterEntry))
        assert entry.notice_sent_on == date(2026, 11, 30)
        audit = session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert (audit.action, audit.actor, audit.changes) == (
        "updated", "manager@example.org", {"notice_sent_on": ["", "2026-11-30"]})
    page = text_of(manager.get("/workspace/register/QL-1"))
    assert "Notice sent Mon 30 Nov 2026" in page
    assert "No notice has been sent" not in page


def test_the_stored_letter_is_what_prints_even_after_the_entry_changes(services, staff,
                                                                        notices):
    add_entry(services)
    notice_id = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    services.register.lift("QL-1", "manager@example.org", "Resolved", NOW)
    _, pdf = notices.pdf(notice_id)
    assert "Please contact us in writing only" in pdf_text(pdf)
    with pytest.raises(ValueError, match="was lifted"):
        notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)


def test_an_organisation_can_supply_its_own_wording(tmp_path, services, staff, notices):
    (tmp_path / "notice_warning.txt").write_text(
        "Northfield Homes\n\n# Dear {{ name }}\n\nAbout: {{ reasons|join(', ') }}.\n")
    context = {"name": "Robin", "reasons": ["Unreasonable demands"], "letter_date": "",
               "customer_ref": "", "details": "", "manager": "", "manager_title": ""}
    text = render_letter("warning", context, [tmp_path, DEFAULT_TEMPLATES])
    assert text == "Northfield Homes\n\n# Dear Robin\n\nAbout: Unreasonable demands.\n"
    # The restriction notice falls back to callflow's own template.
    assert "How long this will last" in DEFAULT_TEMPLATES.joinpath(
        "notice_restriction.txt").read_text()


def test_a_template_placeholder_that_is_not_filled_is_an_error_not_a_gap():
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        render_letter("warning", {"name": "Robin"}, [DEFAULT_TEMPLATES])


def test_the_pdf_keeps_names_outside_latin_1_when_a_unicode_font_is_installed():
    text = pdf_text(letter_pdf("# Dear Łukasz Wróbel\n\n- first point\n", "t"))
    # Without DejaVu the core fonts stand in, and what Latin-1 lacks becomes "?".
    assert ("Łukasz" if notices_module._UNICODE_FONT.exists() else "?ukasz") in text
    assert "Wróbel" in text and "first point" in text


@pytest.mark.parametrize(("windows", "expected"), [
    ("Mon-Fri 09:00-17:00", ["Monday to Friday, 9am to 5pm"]),
    ("Tue,Thu 10:00-12:00", ["Tuesday and Thursday, 10am to midday"]),
    ("Mon,Wed,Fri 10:00-11:00", ["Monday, Wednesday and Friday, 10am to 11am"]),
    ("Sat 09:30-10:00", ["Saturday, 9:30am to 10am"]),
    ("", []),
])
def test_call_windows_read_as_a_customer_would_say_them(windows, expected):
    assert windows_text(windows) == expected


def test_a_warning_needs_a_reference_a_name_a_category_and_what_happened(services, staff,
                                                                         notices):
    with pytest.raises(EntryInvalid) as refused:
        notices.produce_warning(" ", "", ["shouting"], "", staff["manager"].id, NOW, TODAY)
    assert {e.field for e in refused.value.errors} == {"customer_ref", "name", "categories",
                                                       "details"}
