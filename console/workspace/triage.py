"""The triage queue: voicemails and messages from people on the register, and their outcomes."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for

from callflow.register import EntryInvalid, FieldError, parse_date
from callflow.roles import Capability, may, roles_with
from callflow.triage import OUTCOME_LABELS, TriageOutcome, read_decision
from console.auth import current_staff, roles_required
from console.workspace import shared, workspace
from usecases import triage

# policy 4.7: supervisors and managers read what restricted callers leave and decide what it is.
TRIAGERS = roles_with(Capability.TRIAGE_MESSAGES)


@workspace.context_processor
def _triage_link() -> dict[str, Any]:
    """Whether the signed-in member of staff sees the triage queue in the navigation."""
    staff = current_staff()
    allowed = staff is not None and may(staff.role, Capability.TRIAGE_MESSAGES)
    shown: dict[str, Any] = {"may_triage": allowed, "triage_overdue": None}
    if allowed and request.endpoint == "workspace.dashboard":
        s = shared.services()
        shown["triage_overdue"] = triage.overdue_count(s.sessions, s.settings.tz,
                                                       s.settings.triage_due_days,
                                                       shared.today())
    return shown


def _queue_page(message_values: dict[str, str], message_errors: dict[str, list[str]],
                status: int = 200) -> Response:
    s = shared.services()
    today = shared.today()
    waiting = triage.waiting(s.sessions, s.settings.tz, s.settings.triage_due_days, today)
    handled = triage.recently_handled(s.sessions, s.settings.tz, s.settings.triage_due_days,
                                      today)
    return shared.render("workspace/triage.html", status=status, waiting=waiting,
                         handled=handled, due_days=s.settings.triage_due_days,
                         overdue=sum(i.overdue for i in waiting), values=message_values,
                         errors=message_errors)


@workspace.get("/triage")
@roles_required(*TRIAGERS)
def triage_queue() -> Response:
    """Voicemails and messages waiting for an outcome, overdue ones flagged, then the latest
    handled."""
    return _queue_page({"customer_ref": "", "summary": "", "received_on": ""}, {})


@workspace.post("/triage/messages")
@roles_required(*TRIAGERS)
def triage_message() -> Response:
    """Put a message that came another way (a letter, an email) on the queue."""
    values = {k: request.form.get(k, "").strip() for k in ("customer_ref", "summary",
                                                           "received_on")}
    problems: list[FieldError] = []
    now = shared.now()
    received_at = now
    if values["received_on"]:
        try:
            received = parse_date(values["received_on"])
        except ValueError as error:
            problems.append(FieldError("received_on", str(error)))
        else:
            if received > shared.today(now):
                problems.append(FieldError("received_on", "must not be in the future"))
            elif received != shared.today(now):
                received_at = datetime.combine(received, time(), shared.services().settings.tz)
    try:
        triage.add_message(shared.services().sessions, values["customer_ref"],
                           values["summary"], received_at, shared.me().email, now, problems)
    except EntryInvalid as refused:
        return _queue_page(values, shared.errors_by_field(refused.errors), 422)
    flash("Message added to the triage queue.", "info")
    return redirect(url_for(".triage_queue"), code=303)


def _item_or_404(item_id: int) -> triage.QueueItem:
    s = shared.services()
    today = shared.today()
    for item in (triage.waiting(s.sessions, s.settings.tz, s.settings.triage_due_days, today)
                 + triage.recently_handled(s.sessions, s.settings.tz,
                                           s.settings.triage_due_days, today)):
        if item.id == item_id:
            return item
    abort(404)


@workspace.route("/triage/<int:item_id>", methods=["GET", "POST"])
@roles_required(*TRIAGERS)
def triage_item(item_id: int) -> Response:
    """Record what a voicemail or message was, and so who handled it and when."""
    item = _item_or_404(item_id)
    values = {"outcome": item.outcome.value if item.outcome else "", "notes": item.notes}
    outcomes = [(o.value, f"{OUTCOME_LABELS[o]}: {o.next_step}") for o in TriageOutcome]
    if request.method == "GET":
        return shared.render("workspace/triage_item.html", item=item, values=values, errors={},
                             outcomes=outcomes)
    values = {k: request.form.get(k, "").strip() for k in values}
    decision, problems = read_decision(values["outcome"], values["notes"])
    if decision is None:
        errors = shared.errors_by_field(FieldError(f, m) for f, m in problems)
        return shared.render("workspace/triage_item.html", status=422, item=item,
                             values=values, errors=errors, outcomes=outcomes)
    triage.record_outcome(shared.services().sessions, item_id, decision, shared.me().email,
                          shared.now())
    flash(f"Outcome recorded for {item.customer_ref}: {decision.outcome.label.lower()}.",
          "info")
    return redirect(url_for(".triage_queue"), code=303)
