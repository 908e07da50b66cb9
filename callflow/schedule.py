"""Weekly call windows and opening hours: parsing, canonical text and concrete openings.

Window times are local wall-clock times. A concrete occurrence is built per local date with
``datetime.combine(day, time, tzinfo=tz)`` and fold=0, then compared in UTC, so:

- a wall time skipped when the clocks go forward is read with the offset before the change
  (01:30 on 29 March 2026 in Europe/London is 02:30 BST); an occurrence left with no real
  time at all (e.g. ``Sun 01:30-02:00`` that day) does not happen;
- a wall time that happens twice when the clocks go back means its first occurrence
  (01:30 on 25 October 2026 is 01:30 BST, not 01:30 GMT).

Windows that touch or overlap on one local date form one Opening; openings are not merged across
midnight, so ``Fri 22:00-24:00; Sat 00:00-02:00`` is two openings. Opening fields are real local
instants; compare them in UTC, since ``==`` on an ambiguous local time follows PEP 495.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

MINUTES_PER_DAY = 24 * 60

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_ABBREVIATIONS = tuple(name[:3] for name in DAY_NAMES)

_DAYS_BY_NAME = {name.lower(): index for index, name in enumerate(DAY_NAMES)} | {
    name.lower(): index for index, name in enumerate(DAY_ABBREVIATIONS)
}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_FIRST_DIGIT = re.compile(r"\d")


class ScheduleError(ValueError):
    """Schedule text that cannot be parsed; the message names the window and the bad token."""


@dataclass(frozen=True)
class Window:
    """Days of the week (0 = Monday) and a local time range [start, end) in minutes."""

    days: frozenset[int]
    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"days must be a non-empty subset of 0..6, not {set(self.days)}")
        if not 0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY:
            raise ValueError(
                f"need 0 <= start_minute < end_minute <= {MINUTES_PER_DAY}, "
                f"not {self.start_minute}..{self.end_minute}"
            )

    def __str__(self) -> str:
        return (
            f"{_format_days(self.days)} "
            f"{_format_minute(self.start_minute)}-{_format_minute(self.end_minute)}"
        )


@dataclass(frozen=True)
class WeeklySchedule:
    """Weekly windows, kept sorted and without duplicates so equal schedules compare equal."""

    windows: tuple[Window, ...]

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("a schedule needs at least one window")
        object.__setattr__(self, "windows", tuple(sorted(set(self.windows), key=_window_order)))

    def is_open(self, local: datetime) -> bool:
        """Whether the aware datetime falls in an opening of this schedule in its own zone."""
        if local.tzinfo is None:
            raise ValueError("local must be timezone-aware")
        return current_opening(self, local, local.tzinfo) is not None

    def __str__(self) -> str:
        return "; ".join(str(window) for window in self.windows)


@dataclass(frozen=True)
class Opening:
    """One concrete occurrence of a schedule's windows, as aware local datetimes [start, end)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("opening start and end must be timezone-aware")
        if _utc(self.start) >= _utc(self.end):
            raise ValueError(f"opening must start before it ends: {self.start} .. {self.end}")

    def contains(self, instant: datetime) -> bool:
        """Whether the aware instant is in [start, end)."""
        return _utc(self.start) <= _utc(instant) < _utc(self.end)


@lru_cache(maxsize=256)
def parse_schedule(text: str) -> WeeklySchedule:
    """Parse e.g. ``"Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30"`` into a WeeklySchedule."""
    if not text.strip():
        raise ScheduleError("no windows given")
    return WeeklySchedule(
        tuple(
            _parse_window(number, part.strip())
            for number, part in enumerate(text.split(";"), start=1)
        )
    )


def current_opening(
    schedule: WeeklySchedule,
    now: datetime,
    tz: tzinfo,
    closed_dates: frozenset[date] = frozenset(),
) -> Opening | None:
    """The opening containing ``now`` (any zone) or None; local closed_dates never open."""
    local_today = _require_aware(now).astimezone(tz).date()
    for opening in _openings_on(schedule, local_today, tz, closed_dates):
        if opening.contains(now):
            return opening
    return None


def next_opening(
    schedule: WeeklySchedule,
    now: datetime,
    tz: tzinfo,
    closed_dates: frozenset[date] = frozenset(),
    horizon_days: int = 370,
) -> Opening | None:
    """The opening containing ``now`` if open, else the next to start, within horizon_days dates."""
    if horizon_days < 0:
        raise ValueError("horizon_days must not be negative")
    now_utc = _utc(_require_aware(now))
    local_today = now.astimezone(tz).date()
    for offset in range(horizon_days + 1):
        day = local_today + timedelta(days=offset)
        for opening in _openings_on(schedule, day, tz, closed_dates):
            if _utc(opening.end) > now_utc:
                return opening
    return None


@lru_cache(maxsize=4096)
def _openings_on(
    schedule: WeeklySchedule, day: date, tz: tzinfo, closed_dates: frozenset[date]
) -> tuple[Opening, ...]:
    """The openings on one local date, overlapping or touching windows merged, in time order."""
    if day in closed_dates:
        return ()
    openings = []
    for start_minute, end_minute in _merged_ranges(schedule, day.weekday()):
        start = _instant(day, start_minute, tz)
        end = _instant(day, end_minute, tz)
        # A window lying wholly in the spring-forward gap has no real time to it.
        if start < end:
            openings.append(Opening(start.astimezone(tz), end.astimezone(tz)))
    return tuple(openings)


@lru_cache(maxsize=1024)
def _merged_ranges(schedule: WeeklySchedule, weekday: int) -> tuple[tuple[int, int], ...]:
    ranges = sorted(
        (window.start_minute, window.end_minute)
        for window in schedule.windows
        if weekday in window.days
    )
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _instant(day: date, minute: int, tz: tzinfo) -> datetime:
    """The UTC instant of a local wall-clock minute of ``day``; minute 1440 is the next midnight."""
    days, minute = divmod(minute, MINUTES_PER_DAY)
    local = datetime.combine(day + timedelta(days=days), time(minute // 60, minute % 60), tzinfo=tz)
    return local.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    # Aware datetimes sharing a tzinfo compare by wall clock, ignoring fold; UTC does not.
    return moment.astimezone(UTC)


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, not {moment!r}")
    return moment


def _parse_window(number: int, text: str) -> Window:
    where = f'window {number} ("{text}")'
    if not text:
        raise ScheduleError(f'{where}: empty window (is there a stray ";"?)')
    first_digit = _FIRST_DIGIT.search(text)
    if first_digit is None:
        raise ScheduleError(f'{where}: no time range (expected e.g. "10:00-12:00")')
    days_text = text[: first_digit.start()].strip()
    if not days_text:
        raise ScheduleError(f'{where}: no days before the times (expected e.g. "Mon-Fri")')
    days = _parse_days(where, days_text)
    start, end = _parse_time_range(where, text[first_digit.start() :].strip())
    if end < start:
        raise ScheduleError(
            f"{where}: ends before it starts (overnight windows are not supported; "
            'split at midnight, e.g. "Fri 22:00-24:00; Sat 00:00-02:00")'
        )
    if end == start:
        raise ScheduleError(f"{where}: starts and ends at {_format_minute(start)}, so never open")
    return Window(days, start, end)


def _parse_days(where: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        if not item.strip():
            raise ScheduleError(f'{where}: empty day in "{text}" (stray ","?)')
        first, dash, last = item.partition("-")
        if dash:
            start, end = _parse_day(where, first), _parse_day(where, last)
            days.update((start + step) % 7 for step in range((end - start) % 7 + 1))
        else:
            days.add(_parse_day(where, first))
    return frozenset(days)


def _parse_day(where: str, text: str) -> int:
    name = text.strip()
    try:
        return _DAYS_BY_NAME[name.lower()]
    except KeyError:
        hint = " (separate days with commas)" if " " in name else ""
        raise ScheduleError(f'{where}: unknown day "{name}"{hint}') from None


def _parse_time_range(where: str, text: str) -> tuple[int, int]:
    parts = [part.strip() for part in text.split("-")]
    if len(parts) != 2 or not all(parts):
        raise ScheduleError(f'{where}: "{text}" is not a time range (use HH:MM-HH:MM)')
    return _parse_time(where, parts[0], is_end=False), _parse_time(where, parts[1], is_end=True)


def _parse_time(where: str, text: str, *, is_end: bool) -> int:
    match = _TIME.fullmatch(text)
    hours, minutes = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not ((0 <= hours <= 23 and 0 <= minutes <= 59) or (hours, minutes) == (24, 0)):
        raise ScheduleError(f'{where}: "{text}" is not a time (use 24-hour HH:MM)')
    if hours == 24 and not is_end:
        raise ScheduleError(f'{where}: "{text}" can only end a window (start at 00:00)')
    return hours * 60 + minutes


def _format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _format_days(days: frozenset[int]) -> str:
    """Days in week order, runs of two or more consecutive days as ranges (``Mon-Fri,Sun``)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAY_ABBREVIATIONS[run[0]]
        if len(run) == 1
        else f"{DAY_ABBREVIATIONS[run[0]]}-{DAY_ABBREVIATIONS[run[-1]]}"
        for run in runs
    )


def _window_order(window: Window) -> tuple[int, int, int, tuple[int, ...]]:
    return min(window.days), window.start_minute, window.end_minute, tuple(sorted(window.days))
