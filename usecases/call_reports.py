"""Reports on a call for a manager: an incident (policy 4.3) or a proposal for the register (5.2).

Identical reports from one member of staff within a few minutes are one report.
"""

from __future__ import annotations

import json
from typing import Any

from callflow.ending import EndReason
from callflow.events import Event, EventKind
from callflow.register import Category
from config import clock
from store.call_events import Batch
from store.db import transaction
from store.models import Incident, Proposal, RegisterEntry
from usecases.bootstrap import Services
from usecases.calls import Actor, CallContext
from usecases.idempotency import OnceOnly, Outcome, report_key

# Identical incident or proposal reports within this window are one report.
REPORT_REPEAT_SECONDS = 600


def report_incident(services: Services, actor: Actor, call: CallContext, category: EndReason,
                    police_reference: str, notes: str) -> Outcome:
    """Record an incident against the call for a manager's follow-up (policy 4.3)."""
    sid, code = call.sid, category.value
    fingerprint = json.dumps([code, police_reference, notes])

    def record() -> dict[str, Any]:
        now = clock.now_utc()
        with transaction(services.sessions) as db:
            incident = Incident(call_sid=sid, reported_by_id=actor.staff.id, reported_at=now,
                                category=code, police_reference=police_reference,
                                notes=notes, status="open")
            db.add(incident)
            db.flush()
            reported = Event(EventKind.INCIDENT, f"incident:{incident.id}", now, {
                **actor.detail, "incident_id": incident.id, "category": code,
                "police_reference": police_reference})
            services.event_sink.emit(Batch(sid, (reported,)))
        return {"call_sid": sid, "incident_id": incident.id, "category": code,
                "police_reference": police_reference, "status": "open", "at": now.isoformat()}

    return OnceOnly(services.redis).run(
        report_key("incident", sid, actor.staff.id, fingerprint), fingerprint,
        REPORT_REPEAT_SECONDS, record, "incident already reported")


def propose(services: Services, actor: Actor, call: CallContext, reason: str,
            categories: list[Category], customer_ref: str) -> Outcome:
    """Propose the caller for the register; only a manager can decide (policy 5.2)."""
    sid = call.sid
    codes = [category.value for category in dict.fromkeys(categories)]
    live = call.live
    withheld = bool(live.withheld) if live else bool(call.row and call.row.withheld)
    number = None if withheld else ((live and live.number)
                                    or (call.row.from_number if call.row else None))
    entry_id = live.entry_id if live else None
    fingerprint = json.dumps([reason, codes, customer_ref])

    def record() -> dict[str, Any]:
        now = clock.now_utc()
        with transaction(services.sessions) as db:
            ref = customer_ref
            if not ref and entry_id is not None:
                entry = db.get(RegisterEntry, entry_id)
                ref = entry.customer_ref if entry is not None else ""
            proposal = Proposal(call_sid=sid, phone_number=number or None, customer_ref=ref,
                                categories=codes, reason=reason, proposed_by_id=actor.staff.id,
                                proposed_at=now, status="open")
            db.add(proposal)
            db.flush()
            proposed = Event(EventKind.PROPOSAL, f"proposal:{proposal.id}", now, {
                **actor.detail, "proposal_id": proposal.id, "categories": codes})
            services.event_sink.emit(Batch(sid, (proposed,)))
        return {"call_sid": sid, "proposal_id": proposal.id, "status": "open",
                "categories": codes, "customer_ref": ref, "at": now.isoformat()}

    return OnceOnly(services.redis).run(
        report_key("proposal", sid, actor.staff.id, fingerprint), fingerprint,
        REPORT_REPEAT_SECONDS, record, "already proposed")
