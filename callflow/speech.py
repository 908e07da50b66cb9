"""Opening times as natural spoken British English for a caller, in local time."""

from datetime import date, datetime, time, tzinfo

from callflow.schedule import DAY_NAMES, Opening

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def spoken_time(t: time) -> str:
    """``10 a.m.``, ``3:30 p.m.``, ``12 noon``, ``midnight``; seconds are ignored."""
    if (t.hour, t.minute) == (0, 0):
        return "midnight"
    if (t.hour, t.minute) == (12, 0):
        return "12 noon"
    hour = t.hour % 12 or 12
    clock = f"{hour}:{t.minute:02d}" if t.minute else f"{hour}"
    return f"{clock} {'a.m.' if t.hour < 12 else 'p.m.'}"


def spoken_day(day: date, today: date) -> str:
    """``today``, ``tomorrow``, ``on Tuesday`` (within six days) or ``on Tuesday 1 December``."""
    days_ahead = (day - today).days
    if days_ahead == 0:
        return "today"
    if days_ahead == 1:
        return "tomorrow"
    weekday = DAY_NAMES[day.weekday()]
    if 1 < days_ahead < 7:
        return f"on {weekday}"
    return f"on {weekday} {day.day} {MONTH_NAMES[day.month - 1]}"


def spoken_opening(opening: Opening, now: datetime, tz: tzinfo) -> str:
    """``now, until 3:30 p.m.`` or e.g. ``tomorrow between 10 a.m. and 12 noon``."""
    end = spoken_time(opening.end.astimezone(tz).timetz())
    if opening.contains(now):
        return f"now, until {end}"
    start = opening.start.astimezone(tz)
    today = now.astimezone(tz).date()
    day = spoken_day(start.date(), today)
    finish = opening.end.astimezone(tz)
    if start.time() == time(0) == finish.time() and finish.date() > start.date():
        return f"{day}, at any time"
    return f"{day} between {spoken_time(start.timetz())} and {end}"


def spoken_next_start(opening: Opening, now: datetime, tz: tzinfo) -> str:
    """``today at 2 p.m.``, ``on Monday at 8 a.m.``; ``now`` if ``now`` is inside the opening."""
    if opening.contains(now):
        return "now"
    start = opening.start.astimezone(tz)
    return f"{spoken_day(start.date(), now.astimezone(tz).date())} at {spoken_time(start.timetz())}"
