"""The board's oversight report for any period: what the register did, counted, in plain words.

Pure: the shell gathers facts (entries, register changes, reviews, appeals, calls) as plain
values and the period; `build_report` counts them into sections of labelled figures that the
page, the CSV and the PDF all show the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from callflow.appeals import AppealOutcome
from callflow.call_limits import LIMIT_END_LABELS, LimitEnd
from callflow.ending import END_REASON_LABELS, EndReason
from callflow.register import CATEGORY_LABELS, Category
from callflow.review_dates import add_months
from callflow.reviews import ReviewOutcome

# A period longer than this is refused: the report is read by people, not archived by it.
MAX_PERIOD_DAYS = 3 * 366
# Calls from one person on the register in the period at or above which contact is "repeated".
REPEATED_CONTACT_CALLS = 5


class Arrangement(StrEnum):
    """The arrangements a restriction can set (policy 4.2 and 4.6)."""

    WRITTEN_ONLY = "written_only"
    CALL_WINDOWS = "call_windows"
    DESIGNATED_CONTACT = "designated_contact"
    VISITS_BY_APPOINTMENT = "visits_by_appointment"
    CALL_LIMITS = "call_limits"


ARRANGEMENT_LABELS = {
    Arrangement.WRITTEN_ONLY: "Written contact only (4.2)",
    Arrangement.CALL_WINDOWS: "Calls at set times (4.6)",
    Arrangement.DESIGNATED_CONTACT: "A designated point of contact (4.6)",
    Arrangement.VISITS_BY_APPOINTMENT: "Visits by appointment (4.6)",
    Arrangement.CALL_LIMITS: "Call length or frequency limits (4.6)",
}

# The register fields whose change varies a restriction's arrangements.
ARRANGEMENT_FIELDS = frozenset({
    "written_only", "call_windows", "designated_contact", "fallback", "visits_by_appointment",
    "call_frequency", "max_call_minutes",
})


class Duration(StrEnum):
    """How long a restriction was set for, in bands a board reads."""

    UP_TO_3_MONTHS = "up_to_3_months"
    UP_TO_6_MONTHS = "up_to_6_months"
    UP_TO_12_MONTHS = "up_to_12_months"
    OVER_12_MONTHS = "over_12_months"


DURATION_LABELS = {
    Duration.UP_TO_3_MONTHS: "Up to 3 months",
    Duration.UP_TO_6_MONTHS: "3 to 6 months",
    Duration.UP_TO_12_MONTHS: "6 to 12 months",
    Duration.OVER_12_MONTHS: "More than 12 months",
}


def duration_band(starts_on: date, ends_on: date) -> Duration:
    """The band of a restriction's length (ends_on is its last day)."""
    for months, band in ((3, Duration.UP_TO_3_MONTHS), (6, Duration.UP_TO_6_MONTHS),
                         (12, Duration.UP_TO_12_MONTHS)):
        if ends_on < add_months(starts_on, months):
            return band
    return Duration.OVER_12_MONTHS


class PeriodError(ValueError):
    """A report period that cannot be used; errors are (field, message) pairs, all at once."""

    def __init__(self, errors: Sequence[tuple[str, str]]):
        self.errors = tuple(errors)
        super().__init__("; ".join(message for _field, message in self.errors))


@dataclass(frozen=True)
class ReportPeriod:
    """The days the report covers, first and last included."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    @property
    def days(self) -> int:
        """How many days the period covers."""
        return (self.last - self.first).days + 1


def check_period(first: date | None, last: date | None) -> ReportPeriod:
    """The period, or PeriodError naming every problem (a missing date, an order, a length)."""
    errors: list[tuple[str, str]] = []
    if first is None:
        errors.append(("from", "Give the first day of the period"))
    if last is None:
        errors.append(("to", "Give the last day of the period"))
    if first is not None and last is not None:
        if last < first:
            errors.append(("to", "The last day must be on or after the first day"))
        elif (last - first).days + 1 > MAX_PERIOD_DAYS:
            errors.append(("to", f"The period must be {MAX_PERIOD_DAYS} days or shorter"))
    if errors:
        raise PeriodError(errors)
    return ReportPeriod(first, last)  # type: ignore[arg-type]


def previous_month(today: date) -> ReportPeriod:
    """The last whole calendar month before today: the report's default period."""
    last = today.replace(day=1) - timedelta(days=1)
    return ReportPeriod(last.replace(day=1), last)


@dataclass(frozen=True)
class EntryFacts:
    """A register entry, as the report needs it (no names, numbers or reasons)."""

    entry_id: int
    categories: tuple[str, ...]
    arrangements: tuple[Arrangement, ...]
    starts_on: date
    ends_on: date
    lifted_on: date | None = None
    review_on: date | None = None

    def in_force_during(self, period: ReportPeriod) -> bool:
        """True when the restriction applied on at least one day of the period."""
        last_day = self.ends_on if self.lifted_on is None else min(
            self.ends_on, self.lifted_on - timedelta(days=1))
        return self.starts_on <= period.last and last_day >= period.first and (
            self.starts_on <= last_day)

    def in_force_on(self, day: date) -> bool:
        """True when the restriction applied on this day."""
        return self.starts_on <= day <= self.ends_on and (
            self.lifted_on is None or day < self.lifted_on)


@dataclass(frozen=True)
class ChangeFacts:
    """One audit record: which entry, what was done, on which local day, which fields changed."""

    entry_id: int | None
    action: str
    on: date
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewFacts:
    """One recorded review: the day it was done, the date it was due by, its outcome."""

    reviewed_on: date
    due_on: date | None
    outcome: str


@dataclass(frozen=True)
class AppealFacts:
    """One appeal: received, to be decided by, decided (if it was) and its outcome."""

    received_on: date
    decide_by: date
    decided_on: date | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class CallFacts:
    """One call in the period: whose (a register entry, if any), and how it went."""

    entry_id: int | None
    decision: str
    warned: bool = False
    time_warned: bool = False
    end_reason: str | None = None  # None: not ended by staff or a limit; "" ended, no reason


@dataclass(frozen=True)
class Figure:
    """One labelled count of the report."""

    label: str
    count: int


@dataclass(frozen=True)
class Table:
    """A titled list of figures; charted when people would rather look than read."""

    key: str
    title: str
    figures: tuple[Figure, ...]
    chart: bool = False
    note: str = ""

    @property
    def total(self) -> int:
        """The sum of the figures."""
        return sum(f.count for f in self.figures)


@dataclass(frozen=True)
class Section:
    """A part of the report: a heading, a sentence on what it counts, its tables."""

    title: str
    intro: str
    tables: tuple[Table, ...]


@dataclass(frozen=True)
class BoardReport:
    """The report for one period."""

    period: ReportPeriod
    sections: tuple[Section, ...]

    def rows(self) -> list[tuple[str, str, str, int]]:
        """Every figure as (section, table, measure, count): the CSV's rows."""
        return [(section.title, table.title, figure.label, figure.count)
                for section in self.sections for table in section.tables
                for figure in table.figures]


def _counted(labels: Iterable[tuple[str, str]], counts: Counter[str]) -> tuple[Figure, ...]:
    return tuple(Figure(label, counts.get(key, 0)) for key, label in labels)


def _restrictions(period: ReportPeriod, entries: Sequence[EntryFacts]) -> Section:
    in_force = [e for e in entries if e.in_force_during(period)]
    categories = Counter(c for e in in_force for c in set(e.categories))
    arrangements = Counter(a.value for e in in_force for a in set(e.arrangements))
    durations = Counter(duration_band(e.starts_on, e.ends_on).value for e in in_force)
    category_labels = [(c.value, CATEGORY_LABELS[c]) for c in Category]
    return Section(
        "Restrictions in force",
        f"{len(in_force)} {'restriction' if len(in_force) == 1 else 'restrictions'} applied "
        "on at least one day of the period. A restriction can rest on more than one behaviour "
        "and set more than one arrangement.",
        (
            Table("categories", "By behaviour (policy section 3)",
                  _counted(category_labels, categories), chart=True),
            Table("arrangements", "By arrangement", _counted(
                [(a.value, ARRANGEMENT_LABELS[a]) for a in Arrangement], arrangements),
                chart=True),
            Table("durations", "By length set", _counted(
                [(d.value, DURATION_LABELS[d]) for d in Duration], durations), chart=True),
        ),
    )


def _changes(period: ReportPeriod, entries: Sequence[EntryFacts],
             changes: Sequence[ChangeFacts], as_of: date) -> Section:
    within = [c for c in changes if c.on in period]

    def entries_with(predicate) -> int:
        return len({c.entry_id for c in within if predicate(c)})

    new = entries_with(lambda c: c.action == "created")
    varied = entries_with(lambda c: c.action == "updated"
                          and bool(ARRANGEMENT_FIELDS.intersection(c.fields)))
    lifted = entries_with(lambda c: c.action == "lifted")
    unreviewed = entries_with(lambda c: c.action == "lapsed_unreviewed")
    # A restriction lapses the day after its last day, unless it was lifted first.
    lapsed = sum(1 for e in entries
                 if (e.ends_on + timedelta(days=1)) in period and e.ends_on < as_of
                 and (e.lifted_on is None or e.lifted_on > e.ends_on))
    return Section(
        "Restrictions started, changed and ended",
        "Counted from the register's audit trail: each restriction once per kind of change.",
        (Table("changes", "Changes in the period", (
            Figure("New restrictions", new),
            Figure("Arrangements varied", varied),
            Figure("Lifted early", lifted),
            Figure("Lapsed at their end date", lapsed),
            Figure("Lapsed because they were not reviewed in time", unreviewed),
        ), chart=True),),
    )


def _reviews(period: ReportPeriod, entries: Sequence[EntryFacts],
             reviews: Sequence[ReviewFacts]) -> Section:
    done = [r for r in reviews if r.reviewed_on in period]
    on_time = sum(1 for r in done if r.due_on is None or r.reviewed_on <= r.due_on)
    outcomes = Counter(r.outcome for r in done)
    overdue = sum(1 for e in entries if e.in_force_on(period.last) and e.review_on is not None
                  and e.review_on < period.last)
    outcome_labels = {ReviewOutcome.CONTINUE: "Continued, with a new review date",
                      ReviewOutcome.VARY: "Arrangements varied",
                      ReviewOutcome.LIFT: "Lifted"}
    return Section(
        "Reviews",
        "Every restriction is reviewed by its review date; a review done after that date is late.",
        (
            Table("review_timeliness", "Reviews done in the period", (
                Figure("On time", on_time),
                Figure("Late", len(done) - on_time),
                Figure("Overdue and not yet done on the last day of the period", overdue),
            ), chart=True),
            Table("review_outcomes", "What the reviews decided",
                  _counted([(o.value, text) for o, text in outcome_labels.items()], outcomes)),
        ),
    )


def _appeals(period: ReportPeriod, appeals: Sequence[AppealFacts]) -> Section:
    received = sum(1 for a in appeals if a.received_on in period)
    decided = Counter(a.outcome or "" for a in appeals if a.decided_on in period)
    late = sum(1 for a in appeals if a.decide_by < period.last and (
        a.decided_on is None or a.decided_on > period.last) and a.received_on <= period.last)
    decided_late = sum(1 for a in appeals if a.decided_on in period
                       and a.decided_on > a.decide_by)
    return Section(
        "Appeals",
        "Appeals are decided by a manager who took no part in the decision or its last review.",
        (
            Table("appeals_received", "Appeals received", (
                Figure("Received in the period", received),
                Figure("Decided in the period, but after their due date", decided_late),
                Figure("Not decided by their due date, on the last day of the period", late),
            )),
            Table("appeal_outcomes", "Appeals decided in the period", (
                Figure("Upheld: the restriction stands", decided.get(AppealOutcome.UPHELD, 0)),
                Figure("Varied: the arrangements changed", decided.get(AppealOutcome.VARIED, 0)),
                Figure("Quashed: the restriction was lifted",
                       decided.get(AppealOutcome.QUASHED, 0)),
            ), chart=True),
        ),
    )


def _calls(calls: Sequence[CallFacts]) -> Section:
    warned = sum(1 for c in calls if c.warned)
    time_warned = sum(1 for c in calls if c.time_warned)
    ended = Counter(c.end_reason for c in calls if c.end_reason is not None)
    reasons = [(r.value, END_REASON_LABELS[r]) for r in EndReason]
    limit = LimitEnd.CALL_LENGTH
    reasons.append((limit.value, LIMIT_END_LABELS[limit][0].upper() + LIMIT_END_LABELS[limit][1:]))
    reasons.append(("", "No reason recorded yet"))
    return Section(
        "Calls warned and ended",
        "Policy 4.5: staff warn a caller before ending a call, except for threats (4.3).",
        (
            Table("warnings", "Warnings", (
                Figure("Calls where the caller was warned about their behaviour", warned),
                Figure("Calls where the caller was told the agreed call length was nearly up",
                       time_warned),
            )),
            Table("ended", "Calls ended, by reason", _counted(reasons, ended), chart=True),
        ),
    )


def _contact(calls: Sequence[CallFacts]) -> Section:
    restricted = [c for c in calls if c.entry_id is not None]
    per_entry = Counter(c.entry_id for c in restricted)
    repeated = sum(1 for n in per_entry.values() if n >= REPEATED_CONTACT_CALLS)
    decisions = Counter(c.decision for c in restricted)
    held_to = [("outside_window", "Outside their agreed call times"),
               ("written_only", "Asked to write instead"),
               ("over_call_limit", "Over their agreed number of calls"),
               ("within_window", "Put through within their arrangements"),
               ("designated_contact", "Put through to their designated contact")]
    return Section(
        "Repeated contact",
        f"Calls from people on the register. Someone who called {REPEATED_CONTACT_CALLS} or "
        "more times in the period counts as repeated contact (policy 4.6).",
        (
            Table("contact", "People on the register who called", (
                Figure("Calls from people on the register", len(restricted)),
                Figure("People on the register who called", len(per_entry)),
                Figure(f"People who called {REPEATED_CONTACT_CALLS} or more times", repeated),
            )),
            Table("contact_outcomes", "What happened to their calls",
                  _counted(held_to, decisions), chart=True),
        ),
    )


def build_report(period: ReportPeriod, as_of: date, entries: Sequence[EntryFacts],
                 changes: Sequence[ChangeFacts], reviews: Sequence[ReviewFacts],
                 appeals: Sequence[AppealFacts], calls: Sequence[CallFacts]) -> BoardReport:
    """The report for `period` from the facts the shell gathered (calls: those in the period);
    as_of is today, so that nothing is counted as lapsed before it has."""
    return BoardReport(period, (
        _restrictions(period, entries),
        _changes(period, entries, changes, as_of),
        _reviews(period, entries, reviews),
        _appeals(period, appeals),
        _calls(calls),
        _contact(calls),
    ))
