"""The supervisors' and managers' workspace: call review, the register, notices and reviews.

Supervisors read everything here; only managers change the register (policy 5.2). Agents see
none of it. Every page is rendered on the server; times are shown in the centre's local time.

This module holds the blueprint and the rules every page shares; the pages live one module per
concern: `calls` (the log, its export and a call's timeline), `dashboard`, `register`, `notices`
and `queue` (proposals and incidents).
"""

from __future__ import annotations

import redis
from flask import Blueprint, Response, abort, redirect, request, url_for

from callflow import words
from callflow.phone import display
from callflow.plain_text import untypeable
from callflow.register import FIELD_LABELS
from console.auth import restrict_blueprint
from console.workspace import shared

# The templates are the console's (console/templates/workspace/), one folder up.
workspace = Blueprint("workspace", __name__, url_prefix="/workspace",
                      template_folder="../templates")
restrict_blueprint(workspace, *shared.READERS)

# The words module's rules as Jinja filters, so every template says things the same way.
for _name, _filter in (("audit_action", words.audit_action), ("change_name", words.change_name),
                       ("stored_value", shared.stored_value), ("reason_label", words.reason),
                       ("phone", display), ("role_label", words.role_name),
                       ("words", words.humanise)):
    workspace.add_app_template_filter(_filter, _name)


@workspace.before_request
def _refuse_untypeable_input() -> None:
    """A NUL or other control character in a form field or an address is nothing a person typed
    and the database may refuse it: a 400 naming the field, before any view sees it."""
    # The call log's filters are checked by their own view, which shows the error beside them.
    sources = (((request.view_args or {}).items(), False), (request.form.items(multi=True), True))
    for pairs, multi_line in sources:
        for name, value in pairs:
            if isinstance(value, str) and untypeable(value, keep_lines=multi_line):
                label = FIELD_LABELS.get(name) or name.replace("_", " ")
                abort(400, f"{label.capitalize()} contains a character that cannot be typed "
                           "or stored (such as a null character); remove it and try again.")


@workspace.errorhandler(redis.RedisError)
def _store_unavailable(error: redis.RedisError) -> Response:
    """A register write refused because Redis did not answer: nothing was saved (503)."""
    return shared.render("workspace/unavailable.html", status=503)


@workspace.get("/")
def index() -> Response:
    """The workspace starts at the call log."""
    return redirect(url_for(".calls"), code=303)


# The concern modules add their routes to the blueprint above, so they are imported after it.
from console.workspace import (  # noqa: E402, F401
    board_report,
    calls,
    dashboard,
    notices,
    queue,
    register,
    triage,
)
