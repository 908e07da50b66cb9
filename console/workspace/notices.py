"""Notices: the restriction notice for an entry, warning letters, their PDFs and sending dates."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for

from callflow.register import Category, EntryInvalid, FieldError, parse_date
from console.auth import roles_required
from console.workspace import shared, workspace
from console.workspace.queue import close_proposal, proposal_values
from console.workspace.register import entry_page
from usecases.notices import NoticeRefused, Notices


def _notices() -> Notices:
    s = shared.services()
    return Notices(s.register, s.settings)


def pdf_filename(kind: str, customer_ref: str, notice_id: int) -> str:
    """A notice's PDF file name, with anything unsafe in a file name replaced by "_"."""
    ref = re.sub(r"[^A-Za-z0-9._-]", "_", customer_ref)
    return f"{kind}-notice-{ref}-{notice_id}.pdf"


@workspace.post("/register/<customer_ref>/notices")
@roles_required(*shared.DECIDERS)
def notice_new(customer_ref: str) -> Response:
    """Produce the restriction notice for an entry's current arrangements."""
    now = shared.now()
    try:
        _notices().produce_restriction(customer_ref, shared.me().id, now, shared.today(now))
    except NoticeRefused as refused:
        flash(str(refused), "error")
    else:
        flash("Notice produced.", "info")
    return redirect(url_for(".entry", customer_ref=customer_ref), code=303)


@workspace.get("/notices/<int:notice_id>.pdf")
def notice_pdf(notice_id: int) -> Response:
    """A notice as a PDF to print or send."""
    try:
        notice, pdf = _notices().pdf(notice_id)
    except NoticeRefused:
        abort(404)
    name = pdf_filename(notice.kind, notice.customer_ref, notice.id)
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@workspace.post("/notices/<int:notice_id>/sent")
@roles_required(*shared.DECIDERS)
def notice_sent(notice_id: int) -> Response:
    """Record the day a notice was sent; the entry's notice date follows (audited)."""
    notices = _notices()
    notice = notices.get(notice_id)
    if notice is None:
        abort(404)
    now = shared.now()
    raw = request.form.get("sent_on", "").strip()
    try:
        sent_on = parse_date(raw) if raw else shared.today(now)
        notices.mark_sent(notice_id, sent_on, shared.me().email, now, shared.today(now))
    except ValueError as error:
        errors = error.errors if isinstance(error, EntryInvalid) else [
            FieldError("sent_on", str(error))]
        if notice.entry_id is not None and notice.kind == "restriction":
            return entry_page(notice.customer_ref, 422,
                              sent_errors=shared.errors_by_field(errors))
        flash("; ".join(map(str, errors)), "error")
        return redirect(url_for(".queue"), code=303)
    flash(f"Notice recorded as sent on {shared.day(sent_on)}.", "info")
    if notice.kind == "restriction" and notice.entry_id is not None:
        return redirect(url_for(".entry", customer_ref=notice.customer_ref), code=303)
    return redirect(url_for(".warning_view", notice_id=notice_id), code=303)


def _warning_form(values: dict[str, Any], errors: dict[str, list[str]], proposal_id: str,
                  status: int = 200) -> Response:
    return shared.render("workspace/warning_form.html", status=status, values=values,
                         errors=errors, categories=list(Category), proposal_id=proposal_id)


@workspace.route("/notices/warning", methods=["GET", "POST"])
@roles_required(*shared.DECIDERS)
def warning_new() -> Response:
    """A warning letter before any restriction (policy 5.1: the chance to change)."""
    proposal_id = request.values.get("proposal", "")
    if request.method == "GET":
        values: dict[str, Any] = {"customer_ref": "", "name": "", "categories": [],
                                  "details": "", "postal_address": ""}
        if proposal_id.isdigit():
            found = proposal_values(int(proposal_id))
            values.update(customer_ref=found.get("customer_ref", ""),
                          categories=found.get("categories", []),
                          details=found.get("reason", ""))
        return _warning_form(values, {}, proposal_id)
    values = {k: request.form.get(k, "").strip()
              for k in ("customer_ref", "name", "details", "postal_address")}
    values["categories"] = request.form.getlist("categories")
    now = shared.now()
    try:
        notice_id = _notices().produce_warning(
            values["customer_ref"], values["name"], values["categories"], values["details"],
            shared.me().id, now, shared.today(now), values["postal_address"])
    except EntryInvalid as refused:
        return _warning_form(values, shared.errors_by_field(refused.errors), proposal_id,
                             status=422)
    if proposal_id.isdigit():
        close_proposal(int(proposal_id), "warned", shared.me(), "warning letter produced", None)
    flash("Warning letter produced: print or send it, then mark it sent.", "info")
    return redirect(url_for(".warning_view", notice_id=notice_id), code=303)


@workspace.get("/notices/<int:notice_id>")
def warning_view(notice_id: int) -> Response:
    """A produced notice: its text, its PDF and whether it was sent."""
    notice = _notices().get(notice_id)
    if notice is None:
        abort(404)
    return shared.render("workspace/notice.html", notice=notice, today=shared.today())
