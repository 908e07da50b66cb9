"""What every workspace page uses: the services, who is signed in, the clock and the renderer."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from flask import Response, abort, current_app, render_template

from callflow import words
from callflow.register import CATEGORY_LABELS, FieldError
from callflow.roles import Capability, may, roles_with
from config import clock
from console.auth import current_staff
from store import call_queries as q
from store.models import Staff
from usecases.bootstrap import Services, services_of

READERS = roles_with(Capability.REVIEW_CALLS)  # supervisors, managers and admins
# policy 5.2: all decisions to restrict contact are the manager's
DECIDERS = roles_with(Capability.DECIDE_RESTRICTIONS)

# The call log's dates (and the repeat callers' page) are refused outside these years.
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def services() -> Services:
    """The application's services."""
    return services_of(current_app)


def me() -> Staff:
    """The signed-in member of staff."""
    staff = current_staff()
    if staff is None:  # the blueprint's rule has already refused anyone signed out
        abort(401)
    return staff


def now() -> datetime:
    """The current instant, in UTC."""
    return clock.now_utc()


def today(moment: datetime | None = None) -> date:
    """The centre's local date, now or at `moment`."""
    return clock.local_today(services().settings.tz, moment)


def local(moment: datetime | None, seconds: bool = False) -> str:
    """An instant in the centre's local time, as staff read it."""
    if moment is None:
        return ""
    return words.local_moment(moment, services().settings.tz, seconds)


def day(value: date | None) -> str:
    """A date as staff read it."""
    return words.short_date(value)


def stored_value(value: object) -> str:
    """A value as the audit history stored it, in words (dates and instants in local time)."""
    return words.stored_value(value, services().settings.tz)


def is_manager() -> bool:
    """Whether the signed-in member of staff may decide restrictions (policy 5.2)."""
    return may(me().role, Capability.DECIDE_RESTRICTIONS)


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A workspace page, with the helpers and labels every template uses."""
    html = render_template(
        template, local=local, day=day, is_manager=is_manager(),
        decision_labels=q.DECISION_LABELS, category_labels=CATEGORY_LABELS, **context,
    )
    return Response(html, status=status, mimetype="text/html")


def errors_by_field(errors: Iterable[FieldError]) -> dict[str, list[str]]:
    """Error messages grouped by the form field they belong to, in order."""
    found: dict[str, list[str]] = {}
    for error in errors:
        found.setdefault(error.field, []).append(error.message)
    return found
