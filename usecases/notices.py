"""Letters to customers (policy 4.2, 5.1): the restriction notice and the warning before it.

The wording lives in Jinja2 text templates the organisation can edit (config/templates, or a
directory of its own); a notice's text is stored when it is produced, so the PDF printed later is
exactly the letter that was sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from fpdf import FPDF
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callflow import words
from callflow.notices import needs_new_notice as needs_new_notice  # re-exported (workspace, upkeep)
from callflow.register import CATEGORY_LABELS, Category, EntryInvalid, FieldError
from callflow.schedule import DAY_NAMES, parse_schedule
from config.settings import Settings
from store.db import transaction
from store.models import Notice, RegisterEntry, Staff
from store.register import RegisterStore, fields_of
from usecases.adjustments import large_print
from usecases.register import RegisterService

KINDS = ("restriction", "warning", "review_outcome", "appeal_received", "appeal_outcome", "lift",
         "lapse")
# What each kind of letter is called, for staff and a PDF's title.
KIND_TITLES = {
    "restriction": "Restriction notice",
    "warning": "Warning notice",
    "review_outcome": "Review outcome letter",
    "appeal_received": "Appeal acknowledgement",
    "appeal_outcome": "Appeal outcome letter",
    "lift": "Restriction lifted letter",
    "lapse": "Restriction ended letter",
}
# How long after an end is recorded its lapse letter may still be written.
LAPSE_LETTER_WITHIN = timedelta(days=14)
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "templates"
_UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_UNICODE_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
_POLICY_REF = re.compile(r"\s*\(\d+\.\d+\)$")


class NoticeRefused(ValueError):
    """A notice that cannot be produced or marked sent; the message says why."""


def template_dirs(settings: Settings) -> list[Path]:
    """Where letter templates are looked for: the organisation's own first, then callflow's."""
    own = settings.notice_templates
    return ([Path(own)] if own else []) + [DEFAULT_TEMPLATES]


def _environment(dirs: Sequence[Path]) -> Environment:
    # Plain text, not HTML: nothing to escape, and a missing placeholder is an error, not a gap.
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True,
    )


def render_letter(kind: str, context: dict[str, object], dirs: Sequence[Path]) -> str:
    """The letter's text from the template notice_<kind>.txt."""
    if kind not in KINDS:
        raise NoticeRefused(f"no such notice: {kind}")
    text = _environment(dirs).get_template(f"notice_{kind}.txt").render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def long_date(day: date) -> str:
    """A date as a letter writes it: 1 December 2026."""
    return words.long_date(day)


def _days_text(days: Iterable[int]) -> str:
    ordered = sorted(days)
    if len(ordered) >= 3 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{DAY_NAMES[ordered[0]]} to {DAY_NAMES[ordered[-1]]}"
    names = [DAY_NAMES[d] for d in ordered]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _minute_text(minute: int) -> str:
    return words.minute_of_day(minute)


def windows_text(call_windows: str) -> list[str]:
    """Call windows as a customer reads them: "Monday to Friday, 2pm to 3:30pm"."""
    if not call_windows:
        return []
    return [f"{_days_text(w.days)}, {_minute_text(w.start_minute)} to "
            f"{_minute_text(w.end_minute)}" for w in parse_schedule(call_windows).windows]


def category_text(values: Iterable[str]) -> list[str]:
    """Category labels without the policy paragraph numbers staff see."""
    return [_POLICY_REF.sub("", CATEGORY_LABELS[Category(v)]) for v in values]


def address_lines(postal_address: str) -> list[str]:
    """A postal address as the lines a letter prints under the name."""
    return [line.strip() for line in (postal_address or "").splitlines() if line.strip()]


def restriction_context(entry: RegisterEntry, today: date, manager: Staff,
                        warning_sent: date | None = None) -> dict[str, object]:
    """Placeholders for the restriction notice of a stored entry."""
    fields = fields_of(entry)
    return {
        "letter_date": long_date(today),
        "name": fields.name or "Customer",
        "address_lines": address_lines(fields.postal_address),
        "customer_ref": fields.customer_ref,
        "reasons": category_text(c.value for c in fields.categories),
        "reason_text": fields.reason,
        "had_warning": warning_sent is not None,
        "warning_date": long_date(warning_sent) if warning_sent else "",
        "written_only": fields.written_only,
        "windows": windows_text(fields.call_windows),
        "designated_contact": entry.designated_contact.name if entry.designated_contact else "",
        "fallback_contact": entry.fallback_contact.name if entry.fallback_contact else "",
        "visits_by_appointment": fields.visits_by_appointment,
        "closed_issues": [f"{i.reference}: {i.summary}" for i in fields.closed_issues],
        "starts_on": long_date(fields.starts_on),
        "ends_on": long_date(fields.ends_on),
        "review_on": long_date(fields.review_on) if fields.review_on else "",
        "manager": manager.name,
        "manager_title": "Customer Services Manager",
    }


def warning_context(customer_ref: str, name: str, categories: Sequence[str], details: str,
                    today: date, manager: Staff, postal_address: str = "") -> dict[str, object]:
    """Placeholders for a warning letter (no restriction yet)."""
    return {
        "letter_date": long_date(today),
        "name": name or "Customer",
        "address_lines": address_lines(postal_address),
        "customer_ref": customer_ref,
        "reasons": category_text(categories),
        "details": details,
        "manager": manager.name,
        "manager_title": "Customer Services Manager",
    }


def add_letter(session: Session, settings: Settings, kind: str, entry: RegisterEntry,
               context: dict[str, object], produced_by_id: int, now: datetime) -> Notice:
    """Render and store a letter about an entry inside the caller's transaction.

    context holds the letter's own placeholders; the customer's name and reference, the date
    and the signing manager are filled in here.
    """
    manager = session.get(Staff, produced_by_id)
    body = render_letter(kind, {
        "letter_date": long_date(context.pop("today")) if "today" in context else "",
        "name": entry.name or "Customer", "customer_ref": entry.customer_ref,
        "address_lines": address_lines(entry.postal_address),
        "manager": manager.name, "manager_title": "Customer Services Manager", **context,
    }, template_dirs(settings))
    notice = Notice(entry_id=entry.id, customer_ref=entry.customer_ref, kind=kind,
                    produced_by_id=produced_by_id, produced_at=now, body=body)
    session.add(notice)
    session.flush()
    return notice


def add_letter_if_told(session: Session, settings: Settings, kind: str, entry: RegisterEntry,
                       context: dict[str, object], produced_by_id: int,
                       now: datetime) -> Notice | None:
    """add_letter, unless the customer is not told in writing (the entry's not_told_reason,
    recorded by a manager as the ICO expects): then no letter is queued and None is returned."""
    if entry.not_told_reason:
        return None
    return add_letter(session, settings, kind, entry, context, produced_by_id, now)


def letter_pdf(body: str, title: str, large_print: bool = False) -> bytes:
    """A printable A4 PDF of a letter's text; "# " lines are headings, "- " lines bullets.

    large_print: 16 point text, for a person whose needs ask for it (issue 13, Equality Act).
    """
    text_pt, heading_pt, line_mm = (16, 18, 8.0) if large_print else (11, 12, 5.5)
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("callflow")
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=20)
    if _UNICODE_FONT.exists() and _UNICODE_BOLD.exists():
        pdf.add_font("Letter", "", str(_UNICODE_FONT))
        pdf.add_font("Letter", "B", str(_UNICODE_BOLD))
        family = "Letter"
    else:
        # The core fonts know Latin-1 only; fold typographic punctuation rather than fail.
        family = "Helvetica"
        body = body.translate(str.maketrans("‘’“”–—…", "''\"\"--.")).encode(
            "latin-1", "replace").decode("latin-1")
    pdf.add_page()
    for line in body.splitlines():
        if line.startswith("# "):
            pdf.ln(2)
            pdf.set_font(family, "B", heading_pt)
            pdf.multi_cell(0, line_mm + 0.5, line[2:], align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif line.startswith("- "):
            pdf.set_font(family, "", text_pt)
            pdf.set_x(pdf.l_margin + 4)
            bullet = "\u2022 " if family == "Letter" else "- "
            pdf.multi_cell(0, line_mm, bullet + line[2:], align="L", new_x="LMARGIN",
                           new_y="NEXT")
        elif not line.strip():
            pdf.ln(3)
        else:
            pdf.set_font(family, "", text_pt)
            pdf.multi_cell(0, line_mm, line, align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@dataclass(frozen=True)
class NoticeView:
    """A produced notice, for the workspace."""

    id: int
    kind: str
    customer_ref: str
    entry_id: int | None
    produced_by: str
    produced_at: datetime
    sent_on: date | None
    body: str
    withdrawn_at: datetime | None = None


def _view(notice: Notice, names: dict[int, str]) -> NoticeView:
    return NoticeView(notice.id, notice.kind, notice.customer_ref, notice.entry_id,
                      names.get(notice.produced_by_id, ""), notice.produced_at, notice.sent_on,
                      notice.body, notice.withdrawn_at)


class Notices:
    """Produces letters, stores them, and records when they were sent."""

    def __init__(self, register: RegisterService, settings: Settings):
        self.register = register
        self.settings = settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The register's sessions."""
        return self.register.sessions

    def produce_restriction(self, customer_ref: str, manager_id: int, now: datetime,
                            today: date) -> int:
        """Write the restriction notice for an entry's current arrangements; returns its id."""
        with transaction(self.sessions) as session:
            entry = RegisterStore(session).get(customer_ref)
            if entry is None:
                raise NoticeRefused(f"no register entry {customer_ref}")
            if entry.lifted_at is not None:
                raise NoticeRefused(f"{customer_ref} was lifted; there is no restriction to notify")
            if entry.not_told_reason:
                raise NoticeRefused(f"{customer_ref} is not told in writing "
                                    f"({entry.not_told_reason}), so no letter is produced")
            manager = session.get(Staff, manager_id)
            warned = session.scalar(
                select(Notice.sent_on).where(Notice.customer_ref == customer_ref,
                                             Notice.kind == "warning",
                                             Notice.sent_on.is_not(None))
                .order_by(Notice.sent_on.desc()).limit(1)
            )
            body = render_letter("restriction", restriction_context(entry, today, manager, warned),
                                 template_dirs(self.settings))
            notice = Notice(entry_id=entry.id, customer_ref=customer_ref, kind="restriction",
                            produced_by_id=manager_id, produced_at=now, body=body)
            session.add(notice)
            session.flush()
            return notice.id

    def produce_warning(self, customer_ref: str, name: str, categories: Sequence[str],
                        details: str, manager_id: int, now: datetime, today: date,
                        postal_address: str = "") -> int:
        """Write a warning letter (policy 5.1) for a customer; returns its id.

        postal_address: where it is sent; blank takes the address on their register entry.
        """
        errors = []
        if not customer_ref.strip():
            errors.append(FieldError("customer_ref", "is required"))
        if not name.strip():
            errors.append(FieldError("name", "is required"))
        if not categories:
            errors.append(FieldError("categories", "choose at least one"))
        for value in categories:
            if value not in {c.value for c in Category}:
                errors.append(FieldError("categories", f"{value!r} is not a category"))
        if not details.strip():
            errors.append(FieldError("details", "say what happened"))
        if errors:
            raise EntryInvalid(errors)
        with transaction(self.sessions) as session:
            manager = session.get(Staff, manager_id)
            entry_id, address = session.execute(
                select(RegisterEntry.id, RegisterEntry.postal_address)
                .where(RegisterEntry.customer_ref == customer_ref.strip())
            ).first() or (None, "")
            body = render_letter("warning", warning_context(
                customer_ref.strip(), name.strip(), categories, details.strip(), today, manager,
                postal_address.strip() or address or ""), template_dirs(self.settings))
            notice = Notice(entry_id=entry_id, customer_ref=customer_ref.strip(), kind="warning",
                            produced_by_id=manager_id, produced_at=now, body=body)
            session.add(notice)
            session.flush()
            return notice.id

    def lift(self, customer_ref: str, actor_email: str, reason: str, now: datetime,
             today: date, not_told_reason: str = "") -> int | None:
        """Lift an entry early (withdrawing its unsent notices) and write the lift letter;
        returns its id, or None when the customer is not told in writing (not_told_reason,
        recorded on the entry and audited: the ICO expects the reason kept)."""
        self.register.lift(customer_ref, actor_email, reason, now)
        with transaction(self.sessions) as session:
            store = RegisterStore(session)
            entry = store.get(customer_ref)
            why = not_told_reason.strip()
            if why and why != entry.not_told_reason:
                store.audit(entry, actor_email, "not_told", now,
                            {"not_told_reason": [entry.not_told_reason or "", why]})
                entry.not_told_reason, entry.updated_at = why, now
            if entry.not_told_reason:
                return None
            actor = session.scalar(select(Staff).where(Staff.email == actor_email))
            return add_letter(session, self.settings, "lift", entry, {
                "today": today, "starts_on": long_date(entry.starts_on),
                "lifted_on": long_date(today), "reasons": reason.strip(),
            }, actor.id, now).id

    def produce_lapse_letters(self, now: datetime, today: date) -> list[int]:
        """Write the letter for each restriction that has ended on its date (or lapsed for
        want of a review) and has none yet, unless its customer is not told in writing;
        signed by the manager who decided it. Returns their ids; safe to run twice."""
        produced: list[int] = []
        with transaction(self.sessions) as session:
            written = select(Notice.entry_id).where(Notice.kind == "lapse",
                                                    Notice.entry_id.is_not(None))
            ended = session.scalars(
                select(RegisterEntry).where(
                    RegisterEntry.lapse_recorded_at.is_not(None),
                    RegisterEntry.lifted_at.is_(None), RegisterEntry.anonymised_at.is_(None),
                    RegisterEntry.ends_on < today, RegisterEntry.not_told_reason == "",
                    # only recent ends: restrictions that ended before these letters existed
                    # are not written to now, long afterwards
                    RegisterEntry.lapse_recorded_at >= now - LAPSE_LETTER_WITHIN,
                    RegisterEntry.id.not_in(written),
                ).order_by(RegisterEntry.id)
            ).all()
            for entry in ended:
                produced.append(add_letter(session, self.settings, "lapse", entry, {
                    "today": today, "starts_on": long_date(entry.starts_on),
                    "ended_on": long_date(entry.ends_on),
                }, entry.decided_by_id, now).id)
        return produced

    def get(self, notice_id: int) -> NoticeView | None:
        """One notice."""
        with self.sessions() as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                return None
            return _view(notice, {notice.produced_by_id: session.get(
                Staff, notice.produced_by_id).name})

    def for_customer(self, customer_ref: str) -> list[NoticeView]:
        """Every notice produced for a customer, newest first."""
        with self.sessions() as session:
            notices = session.scalars(
                select(Notice).where(Notice.customer_ref == customer_ref)
                .order_by(Notice.produced_at.desc(), Notice.id.desc())
            ).all()
            names = dict(session.execute(select(Staff.id, Staff.name)).all())
            return [_view(n, names) for n in notices]

    def pdf(self, notice_id: int) -> tuple[NoticeView, bytes]:
        """A stored notice and its PDF."""
        notice = self.get(notice_id)
        if notice is None:
            raise NoticeRefused(f"no notice {notice_id}")
        title = f"{KIND_TITLES.get(notice.kind, notice.kind)} {notice.customer_ref}"
        with self.sessions() as session:  # issue 13: large print when the person's needs ask
            large = notice.entry_id is not None and large_print(
                RegisterStore(session).get_by_id(notice.entry_id))
        return notice, letter_pdf(notice.body, title, large_print=large)

    def mark_sent(self, notice_id: int, sent_on: date, actor: str, now: datetime,
                  today: date) -> None:
        """Record the day a notice was sent; a restriction notice also dates the entry's notice."""
        if sent_on > today:
            raise EntryInvalid([FieldError("sent_on", "cannot be in the future")])
        notice = self.get(notice_id)
        if notice is None:
            raise NoticeRefused(f"no notice {notice_id}")
        if notice.withdrawn_at is not None:
            raise NoticeRefused("This notice was withdrawn: the restriction no longer applies, "
                                "so it should not be sent.")
        if notice.kind == "restriction" and notice.entry_id is not None:
            with self.sessions() as session:
                entry = RegisterStore(session).get_by_id(notice.entry_id)
                fields = fields_of(entry) if entry is not None else None
            if fields is not None and fields.notice_sent_on != sent_on:
                # Through the register service, so the change is audited like any other.
                self.register.save(replace(fields, notice_sent_on=sent_on), actor, now, today)
        with transaction(self.sessions) as session:
            session.get(Notice, notice_id).sent_on = sent_on
