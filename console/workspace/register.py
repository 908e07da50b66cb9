"""The register's pages: the list, one entry, and a manager's new, edit, lift and review forms.

Only managers change the register (policy 5.2); supervisors and admins read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from callflow.appeals import APPEAL_OUTCOME_LABELS, AppealOutcome, Channel, involvement_problem
from callflow.evidence import EVIDENCE_FORMS
from callflow.register import (
    COLUMNS,
    LIFT_COLUMNS,
    VOICEMAIL,
    Category,
    EntryInvalid,
    FieldError,
    entry_row,
    entry_status,
    parse_date,
)
from callflow.review_dates import latest_review_on
from callflow.reviews import OUTCOME_LABELS, ReviewDecision, ReviewOutcome, is_overdue
from callflow.roles import Capability, may
from console.auth import roles_required
from console.workspace import adjustments, shared, workspace
from console.workspace.queue import close_proposal, proposal_values
from store import call_queries as q
from store.models import AuditRecord, RegisterEntry, Staff
from store.register import RegisterStore, arrangements_text, fields_of
from usecases.appeals import (
    appeals_of,
    decide_appeal,
    open_appeal,
    record_appeal,
    who_may_not_decide,
)
from usecases.evidence import evidence_of
from usecases.notices import KIND_TITLES, Notices
from usecases.register_write import WriteResult
from usecases.reviews import record_review, reviews_of

CHANNELS = [(c.value, c.value.capitalize()) for c in Channel]
REVIEW_HORIZON = timedelta(days=14)  # a review this close is flagged as due
STATUS_CHOICES = ["current", "active", "upcoming", "lapsed", "lifted", "all"]
LIVE = ("active", "upcoming")  # "current" in the list's filter
NO_LETTER = "no letter produced, as the customer is not told in writing"


@dataclass(frozen=True)
class EntryLine:
    """An entry in the register list, with its status and what needs doing."""

    customer_ref: str
    name: str
    status: str
    starts_on: date
    ends_on: date
    review_on: date | None
    notice_sent_on: date | None
    arrangements: str
    review_due: bool
    needs_notice: bool


@dataclass(frozen=True)
class ReviewLine:
    """A recorded review, as the entry's page lists it."""

    reviewed_on: date
    reviewed_by: str
    outcome: str
    reasons: str
    next_review_on: date | None


@dataclass(frozen=True)
class AppealLine:
    """An appeal, as the entry's page lists it."""

    received_on: date
    channel: str
    grounds: str
    decide_by: date
    decided_by: str
    decided_at: datetime | None
    outcome: str
    reasons: str
    late: bool


def review_due(status: str, review_on: date | None, today: date) -> bool:
    """Whether a live entry's review falls within the horizon (or is overdue)."""
    return status in LIVE and review_on is not None and review_on <= today + REVIEW_HORIZON


def register_lines(entries: Iterable[RegisterEntry], wanted: str, search: str,
                   today: date) -> list[EntryLine]:
    """The list's lines: entries not anonymised, of the status wanted, matching the search
    (lower case, in the reference or the name)."""
    lines = []
    for entry in entries:
        if entry.anonymised_at is not None:
            continue
        status = entry_status(entry.starts_on, entry.ends_on, entry.lifted_at, today).value
        if wanted == "current" and status not in LIVE:
            continue
        if wanted not in ("current", "all") and status != wanted:
            continue
        if search and search not in entry.customer_ref.lower() and search not in (
                entry.name or "").lower():
            continue
        lines.append(EntryLine(
            entry.customer_ref, entry.name or "", status, entry.starts_on, entry.ends_on,
            entry.review_on, entry.notice_sent_on, arrangements_text(entry),
            review_due(status, entry.review_on, today),
            status in LIVE and entry.notice_sent_on is None,
        ))
    return lines


@workspace.get("/register")
def register() -> Response:
    """Every entry, filtered by status, with reviews due and notices unsent flagged."""
    today = shared.today()
    wanted = request.args.get("status", "current")
    search = request.args.get("q", "").strip().lower()
    with shared.services().sessions() as session:
        lines = register_lines(RegisterStore(session).entries(), wanted, search, today)
    return shared.render("workspace/register.html", lines=lines, wanted=wanted, search=search,
                         statuses=STATUS_CHOICES)


def _audit_lines(session: Session, entry_id: int) -> list[AuditRecord]:
    return list(session.scalars(
        select(AuditRecord).where(AuditRecord.entry_id == entry_id)
        .order_by(AuditRecord.at.desc(), AuditRecord.id.desc())
    ))


def _entry_or_404(session: Session, customer_ref: str) -> RegisterEntry:
    """The entry under customer_ref; 404 when there is none, or it has been anonymised."""
    entry = RegisterStore(session).get(customer_ref)
    if entry is None or entry.anonymised_at is not None:
        abort(404)
    return entry


def entry_page(customer_ref: str, status: int = 200,
               lift_errors: Mapping[str, list[str]] | None = None, lift_reason: str = "",
               sent_errors: Mapping[str, list[str]] | None = None,
               not_told_reason: str = "") -> Response:
    """One entry's page, with any errors from its lift or notice-sent forms; 404 if unknown."""
    s = shared.services()
    today = shared.today()
    with s.sessions() as session:
        entry = _entry_or_404(session, customer_ref)
        fields = fields_of(entry)
        audit = _audit_lines(session, entry.id)
        lifted_by = entry.lifted_by.name if entry.lifted_by else ""
        calls_recent = q.call_page(session, q.with_person(session, q.CallFilter(), customer_ref),
                                   s.settings.tz, size=10).rows
        state = entry_status(entry.starts_on, entry.ends_on, entry.lifted_at, today).value
        arrangements = arrangements_text(entry)
        names = dict(session.execute(select(Staff.id, Staff.name)).all())
        reviews = [ReviewLine(r.reviewed_on, names.get(r.reviewed_by_id, ""), r.outcome,
                              r.reasons, r.next_review_on) for r in reviews_of(session, entry.id)]
        appeals = [AppealLine(a.received_on, a.channel, a.grounds, a.decide_by,
                              names.get(a.decided_by_id, ""), a.decided_at, a.outcome or "",
                              a.reasons, a.decided_at is None and today > a.decide_by)
                   for a in appeals_of(session, entry.id)]
    notices = Notices(s.register, s.settings).for_customer(customer_ref)
    evidence = evidence_of(s.sessions, customer_ref)
    return shared.render(
        "workspace/entry.html", status=status, entry=entry, fields=fields, audit=audit,
        evidence=evidence, not_told_reason=not_told_reason,
        state=state, arrangements=arrangements, lifted_by=lifted_by, notices=notices,
        calls=calls_recent, today=today, lift_errors=lift_errors or {},
        lift_reason=lift_reason, sent_errors=sent_errors or {},
        review_due=review_due(state, entry.review_on, today),
        review_overdue=state in LIVE and is_overdue(entry.review_on, today),
        reviews=reviews, appeals=appeals, appeal_open=any(a.decided_at is None for a in appeals),
        kind_titles=KIND_TITLES, outcome_labels={**OUTCOME_LABELS, **APPEAL_OUTCOME_LABELS},
    )


@workspace.get("/register/<customer_ref>")
def entry(customer_ref: str) -> Response:
    """One entry: its arrangements, notices, recent calls and audit history."""
    return entry_page(customer_ref)


# --- the entry form ----------------------------------------------------------------------------


def _staff_choices() -> tuple[list[Staff], list[Staff]]:
    with shared.services().sessions() as session:
        people = session.scalars(select(Staff).where(Staff.active).order_by(Staff.name)).all()
    return list(people), [p for p in people if may(p.role, Capability.DECIDE_RESTRICTIONS)]


def form_row(form: MultiDict) -> dict[str, str]:
    """The register's text fields (as parse_entry reads them) from the entry form."""
    def lines(name: str) -> str:
        return "; ".join(p.strip() for p in form.get(name, "").replace(";", "\n").splitlines()
                         if p.strip())

    row = {name: form.get(name, "").strip() for name in COLUMNS}
    row["phone_numbers"] = lines("phone_numbers")
    row["closed_issues"] = lines("closed_issues")
    row["categories"] = "; ".join(form.getlist("categories"))
    row["written_only"] = "yes" if form.get("written_only") else "no"
    row["visits_by_appointment"] = "yes" if form.get("visits_by_appointment") else "no"
    row["adjustments"] = adjustments.adjustments_cell(form)
    row["representatives"] = adjustments.representatives_cell(form)
    for name in LIFT_COLUMNS:  # lifting has its own form, with its own checks
        row[name] = ""
    return row


def form_values(row: Mapping[str, str]) -> dict[str, Any]:
    """A register row as the entry form shows it: lists one a line, flags as booleans."""
    def one_a_line(name: str) -> str:
        return "\n".join(p.strip() for p in row.get(name, "").split(";") if p.strip())

    values: dict[str, Any] = dict(row)
    values["phone_numbers"] = one_a_line("phone_numbers")
    values["closed_issues"] = one_a_line("closed_issues")
    values["evidence"] = one_a_line("evidence")
    values["categories"] = [c.strip() for c in row.get("categories", "").split(";") if c.strip()]
    values["written_only"] = row.get("written_only") == "yes"
    values["visits_by_appointment"] = row.get("visits_by_appointment") == "yes"
    values.update(adjustments.form_values(row))
    return values


def _entry_form(values: Mapping[str, Any], errors: Mapping[str, list[str]], editing: bool,
                status: int = 200, proposal_id: str = "") -> Response:
    people, managers = _staff_choices()
    return shared.render("workspace/entry_form.html", status=status, values=values,
                         errors=errors, editing=editing, people=people, managers=managers,
                         voicemail=VOICEMAIL, categories=list(Category), proposal_id=proposal_id,
                         evidence_help=f"One a line: {EVIDENCE_FORMS}.",
                         review_max_months=shared.services().settings.review_max_months,
                         need_choices=adjustments.NEED_CHOICES)


def _write_entry(row: Mapping[str, str], actor: Staff, creating: bool) -> WriteResult:
    """Check and save the form's entry in one register write; produce the notice when the
    customer must be told (policy 5.1)."""
    s = shared.services()
    now = shared.now()
    today = shared.today(now)
    result = s.register.write([row], actor.email, now, today, creating=creating, notify=True)
    for customer_ref in result.renotify:
        Notices(s.register, s.settings).produce_restriction(customer_ref, actor.id, now, today)
    return result


@workspace.route("/register/new", methods=["GET", "POST"])
@roles_required(*shared.DECIDERS)
def entry_new() -> Response:
    """Put a customer on the register (a manager's decision, policy 5.2)."""
    me = shared.me()
    today = shared.today()
    proposal_id = request.values.get("proposal", "")
    if request.method == "GET":
        values: dict[str, Any] = {
            "decided_by": me.email, "decided_on": today.isoformat(),
            "starts_on": today.isoformat(), "categories": [],
        }
        if proposal_id.isdigit():
            values.update(proposal_values(int(proposal_id)))
        return _entry_form(values, {}, editing=False, proposal_id=proposal_id)
    row = form_row(request.form)
    result = _write_entry(row, me, creating=True)
    if not result.ok:
        return _entry_form(form_values(row), shared.errors_by_field(result.errors),
                           editing=False, status=422, proposal_id=proposal_id)
    customer_ref = result.saved[0].customer_ref
    if proposal_id.isdigit():
        close_proposal(int(proposal_id), "accepted", me, "entry created", customer_ref)
    flash(f"{customer_ref} is on the register. A notice has been produced: print or "
          "send it, then mark it sent.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


@workspace.route("/register/<customer_ref>/edit", methods=["GET", "POST"])
@roles_required(*shared.DECIDERS)
def entry_edit(customer_ref: str) -> Response:
    """Change an entry's arrangements; a change the customer must be told produces a notice."""
    me = shared.me()
    with shared.services().sessions() as session:
        entry = _entry_or_404(session, customer_ref)
        current = fields_of(entry)
        lifted = entry.lifted_at is not None
    if lifted:
        flash(f"{customer_ref} was lifted and can no longer be changed.", "error")
        return redirect(url_for(".entry", customer_ref=customer_ref), code=303)
    if request.method == "GET":
        return _entry_form(form_values(entry_row(current)), {}, editing=True)
    row = form_row(request.form)
    row["customer_ref"] = customer_ref
    row["notice_sent_on"] = entry_row(current)["notice_sent_on"]
    result = _write_entry(row, me, creating=False)
    if not result.ok:
        return _entry_form(form_values(row), shared.errors_by_field(result.errors),
                           editing=True, status=422)
    if result.saved[0].action == "unchanged":
        flash("Nothing was changed.", "info")
    elif result.renotify:
        flash("Saved. The arrangements changed, so a new notice has been produced: print or "
              "send it, then mark it sent.", "info")
    else:
        flash("Saved.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


# --- lifting and reviews -----------------------------------------------------------------------


@workspace.post("/register/<customer_ref>/lift")
@roles_required(*shared.DECIDERS)
def entry_lift(customer_ref: str) -> Response:
    """Lift an entry before its end date, with the reason."""
    reason = request.form.get("reason", "").strip()
    not_told = request.form.get("not_told_reason", "").strip()
    s, now = shared.services(), shared.now()
    try:
        letter = Notices(s.register, s.settings).lift(
            customer_ref, shared.me().email, reason, now, shared.today(now), not_told)
    except LookupError:
        abort(404)
    except EntryInvalid as refused:
        return entry_page(customer_ref, 422, lift_errors=shared.errors_by_field(refused.errors),
                          lift_reason=reason, not_told_reason=not_told)
    except PermissionError as refused:
        abort(403, str(refused))
    told = ("The letter telling them has been produced: print or send it, then mark it sent."
            if letter is not None else "No letter was produced: they are not told in writing.")
    flash(f"{customer_ref} is lifted; calls from its numbers are routed as normal. {told}",
          "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


def read_review(values: Mapping[str, str]) -> tuple[ReviewDecision | None, list[FieldError]]:
    """The review form's outcome, reasons and next review date, with a message for each
    field that cannot be read (the rules themselves are callflow/reviews.check_review's)."""
    problems: list[FieldError] = []
    try:
        outcome = ReviewOutcome(values.get("outcome", ""))
    except ValueError:
        problems.append(FieldError("outcome", "choose what the review decided"))
        outcome = None
    next_review = None
    if values.get("review_on"):
        try:
            next_review = parse_date(values["review_on"])
        except ValueError as error:
            problems.append(FieldError("review_on", str(error)))
    if outcome is None:
        if not values.get("reasons"):
            problems.append(FieldError("reasons", "say why you decided this"))
        return None, problems
    return ReviewDecision(outcome, values.get("reasons", ""), next_review), problems


def _review_page(fields, values: Mapping[str, str], errors: Mapping[str, list[str]],
                 status: int = 200) -> Response:
    s = shared.services()
    latest = latest_review_on(fields.starts_on, fields.ends_on, s.settings.review_max_months,
                              shared.today())
    return shared.render("workspace/review.html", status=status, fields=fields, values=values,
                         errors=errors, outcomes=[(o.value, o.label) for o in ReviewOutcome],
                         latest=latest, max_months=s.settings.review_max_months)


@workspace.route("/register/<customer_ref>/review", methods=["GET", "POST"])
@roles_required(*shared.DECIDERS)
def entry_review(customer_ref: str) -> Response:
    """Record a review: continue (with a new review date), vary the arrangements, or lift;
    the customer is sent the outcome letter."""
    s = shared.services()
    with s.sessions() as session:
        entry = _entry_or_404(session, customer_ref)
        fields = fields_of(entry)
    values = {"outcome": "", "reasons": "", "review_on": ""}
    if request.method == "GET":
        return _review_page(fields, values, {})
    values = {k: request.form.get(k, "").strip() for k in values}
    decision, problems = read_review(values)
    now = shared.now()
    try:
        if decision is None:
            raise EntryInvalid(problems)
        recorded = record_review(s.register, s.settings, customer_ref, shared.me().email,
                                 decision, now, shared.today(now))
    except EntryInvalid as refused:
        found = list(problems) + [e for e in refused.errors if e not in problems]
        return _review_page(fields, values, shared.errors_by_field(found), 422)
    letter = ("the outcome letter produced" if recorded.letter_id is not None
              else NO_LETTER)
    if recorded.outcome is ReviewOutcome.VARY:
        flash(f"Review recorded and {letter}. Now change the arrangements: "
              "saving them produces the new restriction notice.", "info")
        return redirect(url_for(".entry_edit", customer_ref=customer_ref), code=303)
    if recorded.outcome is ReviewOutcome.LIFT:
        flash(f"Review recorded: {customer_ref} is lifted and {letter}.",
              "info")
    else:
        flash(f"Review recorded and {letter}. The arrangements are unchanged, "
              "so no new restriction notice is needed.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


# --- appeals -----------------------------------------------------------------------------------


@workspace.route("/register/<customer_ref>/appeal", methods=["GET", "POST"])
def entry_appeal(customer_ref: str) -> Response:
    """Record an appeal as received: when, how (letter, email or phone) and its grounds."""
    s = shared.services()
    with s.sessions() as session:
        fields = fields_of(_entry_or_404(session, customer_ref))
    values = {"received_on": shared.today().isoformat(), "channel": "", "grounds": ""}
    if request.method == "POST":
        values = {k: request.form.get(k, "").strip() for k in values}
        now = shared.now()
        try:
            recorded = record_appeal(s.register, s.settings, customer_ref, shared.me().email,
                                     values, now, shared.today(now))
        except EntryInvalid as refused:
            return shared.render("workspace/appeal.html", status=422, fields=fields,
                                 values=values, channels=CHANNELS,
                                 errors=shared.errors_by_field(refused.errors))
        except PermissionError as refused:
            abort(403, str(refused))
        letter = ("An acknowledgement letter has been produced: print or send it."
                  if recorded.letter_id is not None else f"{NO_LETTER.capitalize()}.")
        flash(f"Appeal recorded; it should be decided by {shared.day(recorded.decide_by)}. "
              f"{letter}", "info")
        return redirect(url_for(".entry", customer_ref=customer_ref), code=303)
    return shared.render("workspace/appeal.html", fields=fields, values=values,
                         channels=CHANNELS, errors={})


@workspace.route("/register/<customer_ref>/appeal/decide", methods=["GET", "POST"])
@roles_required(*shared.DECIDERS)
def entry_appeal_decide(customer_ref: str) -> Response:
    """Decide an entry's open appeal: only a manager not involved in the restriction may."""
    s = shared.services()
    with s.sessions() as session:
        entry = _entry_or_404(session, customer_ref)
        fields = fields_of(entry)
        appeal = open_appeal(session, entry.id)
        if appeal is None:
            flash(f"{customer_ref} has no appeal waiting for a decision.", "info")
            return redirect(url_for(".entry", customer_ref=customer_ref), code=303)
        involved = involvement_problem(shared.me().email, shared.me().role,
                                       *who_may_not_decide(session, entry))
        pending = {"received_on": appeal.received_on, "channel": appeal.channel,
                   "grounds": appeal.grounds, "decide_by": appeal.decide_by}
    values = {"outcome": "", "reasons": ""}

    def page(errors: Mapping[str, list[str]], status: int = 200) -> Response:
        return shared.render("workspace/appeal_decide.html", status=status, fields=fields,
                             appeal=pending, values=values, errors=errors, involved=involved,
                             outcomes=[(o.value, o.label) for o in AppealOutcome],
                             today=shared.today())

    if request.method == "GET":
        return page({})  # says plainly why, when this manager may not decide
    if involved:
        return page({}, 403)
    values = {k: request.form.get(k, "").strip() for k in values}
    now = shared.now()
    try:
        decided = decide_appeal(s.register, s.settings, customer_ref, shared.me().email, values,
                                now, shared.today(now))
    except EntryInvalid as refused:
        return page(shared.errors_by_field(refused.errors), 422)
    except PermissionError as refused:
        involved = str(refused)
        return page({}, 403)
    except LookupError:
        flash(f"{customer_ref} has no appeal waiting for a decision.", "info")
        return redirect(url_for(".entry", customer_ref=customer_ref), code=303)
    letter = ("The outcome letter has been produced." if decided.letter_id is not None
              else f"{NO_LETTER.capitalize()}.")
    if decided.outcome is AppealOutcome.VARIED:
        flash(f"Appeal decided: varied. {letter} Now change the "
              "arrangements: saving them produces the new restriction notice.", "info")
        return redirect(url_for(".entry_edit", customer_ref=customer_ref), code=303)
    what = ("the restriction is lifted" if decided.outcome is AppealOutcome.QUASHED
            else "the restriction stays as it is")
    flash(f"Appeal decided: {decided.outcome.value}; {what}. {letter}", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)
