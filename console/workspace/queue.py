"""The queue: agents' proposals, reported incidents, overdue reviews and late appeals waiting
for a manager."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from sqlalchemy import select

from console.auth import roles_required
from console.workspace import shared, workspace
from store.db import transaction
from store.models import Call, Incident, Proposal, RegisterEntry, Staff
from usecases.appeals import late_appeals
from usecases.reviews import overdue_reviews

SHOWN = 100  # of each, open ones first, then the newest


def proposal_values(proposal_id: int) -> dict[str, Any]:
    """What an agent proposed, as form values for the entry or warning-letter form ({} if none)."""
    with shared.services().sessions() as session:
        proposal = session.get(Proposal, proposal_id)
        if proposal is None:
            return {}
        return {"customer_ref": proposal.customer_ref or "",
                "phone_numbers": proposal.phone_number or "",
                "categories": list(proposal.categories or []),
                "reason": proposal.reason or ""}


def close_proposal(proposal_id: int, status: str, me: Staff, note: str,
                   customer_ref: str | None) -> None:
    """Record a manager's decision on an open proposal, linking the entry it led to, if any."""
    with transaction(shared.services().sessions) as session:
        proposal = session.get(Proposal, proposal_id)
        if proposal is None or proposal.status != "open":
            return
        proposal.status, proposal.decided_by_id = status, me.id
        proposal.decided_at, proposal.decision_note = shared.now(), note
        if customer_ref:
            proposal.entry_id = session.scalar(
                select(RegisterEntry.id).where(RegisterEntry.customer_ref == customer_ref))


def resolve_incident(incident_id: int, resolution: str, me: Staff) -> bool:
    """Close an open incident with what was done; False if there is no such incident."""
    with transaction(shared.services().sessions) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return False
        if incident.status == "open":
            incident.status, incident.resolution = "resolved", resolution
            incident.resolved_by_id, incident.resolved_at = me.id, shared.now()
    return True


@workspace.get("/queue")
def queue() -> Response:
    """Overdue reviews, late appeals, agents' proposals and reported incidents."""
    with shared.services().sessions() as session:
        names = dict(session.execute(select(Staff.id, Staff.name)).all())
        proposals = session.scalars(
            select(Proposal).order_by((Proposal.status == "open").desc(),
                                      Proposal.proposed_at.desc()).limit(SHOWN)
        ).all()
        incidents = session.scalars(
            select(Incident).order_by((Incident.status == "open").desc(),
                                      Incident.reported_at.desc()).limit(SHOWN)
        ).all()
        refs = dict(session.execute(select(RegisterEntry.id, RegisterEntry.customer_ref)
                                    .where(RegisterEntry.id.in_(
                                        [p.entry_id for p in proposals if p.entry_id]))).all())
        numbers = dict(session.execute(select(Call.call_sid, Call.from_number).where(
            Call.call_sid.in_([i.call_sid for i in incidents]))).all())
        today = shared.today()
        overdue = overdue_reviews(session, today)
        late = late_appeals(session, today)
    return shared.render("workspace/queue.html", proposals=proposals, incidents=incidents,
                         names=names, refs=refs, numbers=numbers, errors={},
                         overdue_reviews=overdue, late_appeals=late)


@workspace.post("/proposals/<int:proposal_id>/decline")
@roles_required(*shared.DECIDERS)
def proposal_decline(proposal_id: int) -> Response:
    """Decline an agent's proposal, saying why."""
    note = request.form.get("note", "").strip()
    if not note:
        flash("Say why the proposal is declined.", "error")
        return redirect(url_for(".queue"), code=303)
    close_proposal(proposal_id, "declined", shared.me(), note, None)
    flash("Proposal declined.", "info")
    return redirect(url_for(".queue"), code=303)


@workspace.post("/incidents/<int:incident_id>/resolve")
@roles_required(*shared.DECIDERS)
def incident_resolve(incident_id: int) -> Response:
    """Close an incident with what was done (policy 4.3)."""
    resolution = request.form.get("resolution", "").strip()
    if not resolution:
        flash("Say what was done about the incident.", "error")
        return redirect(url_for(".queue"), code=303)
    if not resolve_incident(incident_id, resolution, shared.me()):
        abort(404)
    flash("Incident resolved.", "info")
    return redirect(url_for(".queue"), code=303)
