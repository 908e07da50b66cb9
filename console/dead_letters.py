"""The workspace's page of call events the call log refused (dead letters): read-only.

Supervisors and admins see what was set aside and why; an admin retries them from the command
line (`callflow events retry`) once whatever refused them is put right.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template
from sqlalchemy import select

from callflow import words
from callflow.roles import Capability, may, roles_with
from console.auth import current_staff, restrict_blueprint
from store.dead_letters import DeadLetters, plain_reason
from store.models import Call
from usecases.bootstrap import services_of

dead_letters = Blueprint("dead_letters", __name__, url_prefix="/workspace",
                         template_folder="templates")
restrict_blueprint(dead_letters, *roles_with(Capability.REVIEW_CALLS))

SHOWN = 500


@dead_letters.get("/dead-letters")
def listing() -> Response:
    """Every call event set aside, oldest first, with what went wrong in plain English."""
    s = services_of(current_app)
    with s.sessions() as session:
        store = DeadLetters(session)
        total, letters = store.count(), store.listing(SHOWN)
        sids = {letter.call_sid for letter in letters if letter.call_sid}
        logged = set(session.scalars(select(Call.call_sid).where(Call.call_sid.in_(sids))))
    tz = s.settings.tz

    def local(moment) -> str:
        return words.local_moment(moment, tz, seconds=True)

    rows = [{"id": letter.id, "failed_at": local(letter.failed_at), "call_sid": letter.call_sid,
             "logged": letter.call_sid in logged,
             "reason": plain_reason(letter.error_type), "attempts": letter.attempts}
            for letter in letters]
    staff = current_staff()
    decides = staff is not None and may(staff.role, Capability.DECIDE_RESTRICTIONS)
    html = render_template("workspace/dead_letters.html", rows=rows, total=total,
                           is_manager=decides)
    return Response(html, mimetype="text/html")
