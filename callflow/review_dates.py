"""How late a restriction's review may be: at most a set number of months after it starts or
was last reviewed (the Housing Ombudsman and the LGSCO expect restrictions to be reviewed)."""

from __future__ import annotations

import calendar
from datetime import date

DEFAULT_MAX_REVIEW_MONTHS = 6


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_text(count: int) -> str:
    """"month" or "6 months", as a sentence reads it after "every"."""
    return "month" if count == 1 else f"{count} months"


def latest_review_on(starts_on: date, ends_on: date, max_months: int,
                     last_reviewed_on: date | None = None) -> date:
    """The latest allowed review date: `max_months` after the start or the last review,
    and never after the last day the restriction applies."""
    since = max(starts_on, last_reviewed_on) if last_reviewed_on else starts_on
    return min(add_months(since, max_months), ends_on)


def review_date_problem(starts_on: date, ends_on: date, review_on: date | None,
                        max_months: int, last_reviewed_on: date | None = None) -> str | None:
    """What is wrong with a restriction's review date (missing or too late), or None."""
    if review_on is None:
        return ("is required: every restriction is reviewed at least every "
                f"{months_text(max_months)}")
    latest = latest_review_on(starts_on, ends_on, max_months, last_reviewed_on)
    if review_on <= latest:
        return None
    since = ("the last review" if last_reviewed_on and last_reviewed_on > starts_on
             else "the start date")
    return (f"must be on or before {latest.isoformat()}, at most {months_text(max_months)} "
            f"after {since}")
