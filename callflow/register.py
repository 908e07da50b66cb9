"""The person-of-interest register as plain values: fields, the policy's rules, status."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from callflow.adjustments import (
    Adjustment,
    adjustments_text,
    parse_adjustments,
    written_only_problem,
)
from callflow.call_limits import (
    NO_LIMITS,
    CallLimitError,
    CallLimits,
    parse_frequency,
    parse_minutes,
)
from callflow.evidence import Evidence, evidence_text, parse_evidence
from callflow.phone import InvalidNumber, normalise
from callflow.plain_text import untypeable
from callflow.representatives import (
    Representative,
    parse_representatives,
    representative_problems,
    representatives_text,
)
from callflow.review_dates import DEFAULT_MAX_REVIEW_MONTHS, review_date_problem
from callflow.roles import Capability, may
from callflow.schedule import ScheduleError, parse_schedule


class Category(StrEnum):
    """Behaviour that can lead to a restriction (policy section 3)."""

    AGGRESSIVE_ABUSIVE = "aggressive_abusive"
    UNREASONABLE_DEMANDS = "unreasonable_demands"
    UNREASONABLE_PERSISTENCE = "unreasonable_persistence"

    @property
    def label(self) -> str:
        """How staff read the category."""
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {
    Category.AGGRESSIVE_ABUSIVE: "Aggressive, abusive or intimidating behaviour (3.1)",
    Category.UNREASONABLE_DEMANDS: "Unreasonable demands (3.2)",
    Category.UNREASONABLE_PERSISTENCE: "Unreasonable persistence (3.3)",
}


class Status(StrEnum):
    """Where an entry stands on a given day."""

    UPCOMING = "upcoming"
    ACTIVE = "active"
    LAPSED = "lapsed"
    LIFTED = "lifted"


VOICEMAIL = "voicemail"

COLUMNS = (
    "customer_ref",
    "name",
    "postal_address",
    "phone_numbers",
    "categories",
    "reason",
    "evidence",
    "no_warning_reason",
    "not_told_reason",
    "written_only",
    "call_windows",
    "designated_contact",
    "fallback",
    "visits_by_appointment",
    "call_frequency",
    "max_call_minutes",
    "adjustments",
    "written_only_exception",
    "representatives",
    "closed_issues",
    "staff_notes",
    "decided_by",
    "decided_on",
    "starts_on",
    "ends_on",
    "review_on",
    "notice_sent_on",
    "lifted_at",
    "lifted_by",
    "lifted_reason",
)
# Who lifted an entry, when and why: exported so that an import never makes it active again.
LIFT_COLUMNS = ("lifted_at", "lifted_by", "lifted_reason")
REQUIRED_COLUMNS = (
    "customer_ref",
    "name",
    "phone_numbers",
    "categories",
    "reason",
    "decided_by",
    "decided_on",
    "starts_on",
    "ends_on",
)


# What staff call each field, for messages a person reads.
FIELD_LABELS = {
    "customer_ref": "Customer reference",
    "name": "Name",
    "postal_address": "Postal address",
    "evidence": "Evidence",
    "no_warning_reason": "Why no warning letter first",
    "not_told_reason": "Why the customer is not told in writing",
    "phone_numbers": "Phone numbers",
    "categories": "Behaviour",
    "reason": "Reason",
    "written_only": "Written contact only",
    "call_windows": "Call windows",
    "designated_contact": "Designated contact",
    "fallback": "Fallback",
    "visits_by_appointment": "Visits by appointment",
    "call_frequency": "Most calls allowed",
    "max_call_minutes": "Longest call (minutes)",
    "adjustments": "Needs (reasonable adjustments)",
    "written_only_exception": "Why written only still suits their needs",
    "representatives": "Representatives",
    "closed_issues": "Closed issues",
    "staff_notes": "Notes for staff",
    "decided_by": "Decided by",
    "decided_on": "Decided on",
    "starts_on": "Starts on",
    "ends_on": "Ends on",
    "review_on": "Review by",
    "notice_sent_on": "Notice sent on",
    "lifted_at": "Lifted at",
    "lifted_by": "Lifted by",
    "lifted_reason": "Reason for lifting",
}
# The database's column sizes (store/models.py), and bounds on its free-text columns.
MAX_LENGTHS = {
    "customer_ref": 64,
    "name": 200,
    "postal_address": 1000,
    "evidence": 10000,
    "no_warning_reason": 4000,
    "not_told_reason": 4000,
    "reason": 4000,
    "call_windows": 500,
    "designated_contact": 254,
    "fallback": 254,
    "closed_issues": 10000,
    "staff_notes": 10000,
    "decided_by": 254,
    "lifted_by": 254,
    "lifted_reason": 4000,
    "adjustments": 2000,
    "written_only_exception": 4000,
    "representatives": 4000,
}


@dataclass(frozen=True)
class ClosedIssue:
    """An issue closed under policy 4.7: not reopened without new information."""

    reference: str
    summary: str

    def __str__(self) -> str:
        return f"{self.reference}: {self.summary}"


@dataclass(frozen=True)
class EntryFields:
    """Everything a manager decides about one customer's restriction, already typed."""

    customer_ref: str
    name: str
    phone_numbers: tuple[str, ...]
    categories: tuple[Category, ...]
    reason: str
    decided_by: str
    decided_on: date
    starts_on: date
    ends_on: date
    written_only: bool = False
    call_windows: str = ""
    designated_contact: str = ""
    fallback: str = ""
    visits_by_appointment: bool = False
    call_limits: CallLimits = NO_LIMITS  # policy 4.6: how often and how long they may call
    closed_issues: tuple[ClosedIssue, ...] = ()
    staff_notes: str = ""
    postal_address: str = ""
    evidence: tuple[Evidence, ...] = ()
    no_warning_reason: str = ""
    not_told_reason: str = ""
    review_on: date | None = None
    notice_sent_on: date | None = None
    lifted_at: datetime | None = None
    lifted_by: str = ""
    lifted_reason: str = ""
    adjustments: tuple[Adjustment, ...] = ()
    written_only_exception: str = ""
    representatives: tuple[Representative, ...] = ()


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class EntryInvalid(ValueError):
    """An entry refused by the register's rules."""

    def __init__(self, errors: Iterable[FieldError]):
        self.errors = tuple(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0", ""}
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_flag(text: str) -> bool:
    """yes/no, true/false, 1/0 in any case."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not yes or no")


def parse_date(text: str) -> date:
    """An ISO 8601 date, or a UK day-first date as QL exports it."""
    cleaned = text.strip()
    match = _UK_DATE.match(cleaned)
    try:
        if match:
            day, month, year = (int(part) for part in match.groups())
            return date(year, month, day)
        return date.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (use 2026-12-01 or 01/12/2026)") from None


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date and time with its offset (a bare date is midnight UTC), as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time (use 2026-12-01T10:00:00+00:00)"
                         ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def parse_entry(row: Mapping[str, str]) -> tuple[EntryFields | None, list[FieldError]]:
    """Turn text fields (CSV columns or a form) into typed fields, with every error found."""
    fields, errors = read_entry(row)
    return (None, errors) if errors else (fields, [])


def read_entry(row: Mapping[str, str]) -> tuple[EntryFields, list[FieldError]]:
    """Every field that could be read (defaults where not) and every error found reading them.

    check_entry(fields, ..., unreadable={e.field for e in errors}) then judges the rest, so that
    every problem in every field is reported at once.
    """
    errors: list[FieldError] = []
    # One search of all the row's text at once (an import's millions of rows are clean); field
    # by field only when it finds something.
    if untypeable("".join(value for value in row.values() if isinstance(value, str)),
                  keep_lines=True):
        for name, label in FIELD_LABELS.items():
            value = row.get(name)
            if isinstance(value, str) and untypeable(value, keep_lines=True):
                errors.append(FieldError(name, f"{label} contains a character that cannot be "
                                               "typed or stored (such as a null character)"))
    for name, limit in MAX_LENGTHS.items():
        value = row.get(name)
        # Only a value over the limit can be over it once stripped.
        if value and len(value) > limit and len(value.strip()) > limit:
            errors.append(
                FieldError(name, f"{FIELD_LABELS[name]} must be {limit} characters or fewer")
            )
    unusable = {e.field for e in errors}
    # Each cell stripped once; a field that could not be used reads as empty.
    cells = {name: (value or "").strip() for name, value in row.items()
             if name in FIELD_LABELS and name not in unusable}

    def text(name: str) -> str:
        return cells.get(name, "")

    def need(name: str) -> str:
        value = text(name)
        if not value and name not in unusable:
            errors.append(FieldError(name, "is required"))
        return value

    def typed(name: str, parse, default=None, required: bool = False):
        raw = text(name)
        if not raw:
            if required:
                errors.append(FieldError(name, "is required"))
            return default
        try:
            return parse(raw)
        except (ValueError, OverflowError) as error:
            errors.append(FieldError(name, str(error)))
            return default

    customer_ref = need("customer_ref")
    name = need("name")
    reason = need("reason")

    numbers: list[str] = []
    for raw in _split(text("phone_numbers")):
        try:
            number = normalise(raw)
        except InvalidNumber as error:
            errors.append(FieldError("phone_numbers", str(error)))
            continue
        if number not in numbers:
            numbers.append(number)
    if not text("phone_numbers"):
        errors.append(FieldError("phone_numbers", "is required"))

    categories: list[Category] = []
    for raw in _split(text("categories").replace(",", ";")):
        try:
            category = Category(raw.lower())
        except ValueError:
            allowed = ", ".join(c.value for c in Category)
            errors.append(FieldError("categories", f"{raw!r} is not one of {allowed}"))
            continue
        if category not in categories:
            categories.append(category)
    if not text("categories"):
        errors.append(FieldError("categories", "is required"))

    windows = ""
    if text("call_windows"):
        try:
            windows = str(parse_schedule(text("call_windows")))
        except ScheduleError as error:
            errors.append(FieldError("call_windows", str(error)))

    evidence, problems = parse_evidence(text("evidence"))
    errors += [FieldError("evidence", problem) for problem in problems]

    closed: list[ClosedIssue] = []
    for raw in _split(text("closed_issues")):
        reference, sep, summary = raw.partition(":")
        if not sep or not reference.strip() or not summary.strip():
            errors.append(FieldError("closed_issues", f"{raw!r}: write it as REFERENCE: summary"))
            continue
        closed.append(ClosedIssue(reference.strip(), summary.strip()))

    emails = {}
    for name_ in ("designated_contact", "decided_by", "lifted_by"):
        value = text(name_).lower()
        if value and not _EMAIL.match(value):
            errors.append(FieldError(name_, f"{value!r} is not an email address"))
        emails[name_] = value
    fallback = "" if "fallback" in unusable else text("fallback").lower()
    if fallback and fallback != VOICEMAIL and not _EMAIL.match(fallback):
        errors.append(FieldError("fallback", f"{fallback!r}: use voicemail or a staff email"))
    if emails["designated_contact"] and not fallback:
        fallback = VOICEMAIL  # policy 4.1: an unanswered designated contact still leaves a route
    if not emails["decided_by"] and "decided_by" not in {e.field for e in errors}:
        errors.append(FieldError("decided_by", "is required"))

    adjustments, problems = parse_adjustments(text("adjustments"))
    errors += [FieldError("adjustments", problem) for problem in problems]
    representatives, problems = parse_representatives(text("representatives"))
    errors += [FieldError("representatives", problem) for problem in problems]
    written_only = typed("written_only", parse_flag, False)
    visits = typed("visits_by_appointment", parse_flag, False)
    call_limits = _read_call_limits(text, errors)
    decided_on = typed("decided_on", parse_date, required=True)
    starts_on = typed("starts_on", parse_date, required=True)
    ends_on = typed("ends_on", parse_date, required=True)
    review_on = typed("review_on", parse_date)
    notice_sent_on = typed("notice_sent_on", parse_date)
    lifted_at = typed("lifted_at", parse_moment)
    lifted_reason = text("lifted_reason")
    lift_given = [n for n, v in zip(LIFT_COLUMNS, (text("lifted_at"), emails["lifted_by"],
                                                   lifted_reason), strict=True) if v]
    if lift_given:
        for name_ in LIFT_COLUMNS:
            if name_ not in lift_given and name_ not in unusable:
                errors.append(FieldError(name_, "is required when an entry was lifted"))
    # Every restriction has a review date: a review_on given blank is refused (a source
    # without the column at all, such as an older export, is judged by check_entry alone).
    if "review_on" in row and not text("review_on") and not lift_given and (
            "review_on" not in unusable):
        errors.append(FieldError("review_on", "is required: every restriction has a date by "
                                              "which it is reviewed"))

    return EntryFields(
        customer_ref=customer_ref,
        name=name,
        phone_numbers=tuple(numbers),
        categories=tuple(categories),
        reason=reason,
        decided_by=emails["decided_by"],
        decided_on=decided_on,
        starts_on=starts_on,
        ends_on=ends_on,
        written_only=written_only,
        call_windows=windows,
        designated_contact=emails["designated_contact"],
        fallback=fallback,
        visits_by_appointment=visits,
        call_limits=call_limits,
        closed_issues=tuple(closed),
        staff_notes=text("staff_notes"),
        postal_address="\n".join(line.strip() for line in text("postal_address").splitlines()
                                 if line.strip()),
        evidence=evidence,
        no_warning_reason=text("no_warning_reason"),
        not_told_reason=text("not_told_reason"),
        review_on=review_on,
        notice_sent_on=notice_sent_on,
        lifted_at=lifted_at,
        lifted_by=emails["lifted_by"],
        lifted_reason=lifted_reason,
        adjustments=adjustments,
        written_only_exception=text("written_only_exception"),
        representatives=representatives,
    ), errors


def _read_call_limits(text, errors: list[FieldError]) -> CallLimits:
    """The call length and frequency limits (policy 4.6), with any error in them."""
    max_calls, per, minutes = None, CallLimits().per, None
    try:
        max_calls, per = parse_frequency(text("call_frequency"))
    except CallLimitError as error:
        errors.append(FieldError("call_frequency", str(error)))
    try:
        minutes = parse_minutes(text("max_call_minutes"))
    except CallLimitError as error:
        errors.append(FieldError("max_call_minutes", str(error)))
    return CallLimits(max_calls, per, minutes)


def check_entry(
    fields: EntryFields,
    staff_roles: Mapping[str, str],
    number_holders: Mapping[str, str],
    unreadable: Iterable[str] = (),
    max_review_months: int = DEFAULT_MAX_REVIEW_MONTHS,
    last_reviewed_on: date | None = None,
) -> list[FieldError]:
    """The register's rules; staff_roles maps email to role, number_holders E.164 to another ref.

    A rule that reads a field named in unreadable (one read_entry could not read) is skipped.
    A restriction in force is reviewed at most max_review_months after it starts or was last
    reviewed (last_reviewed_on, the day of the entry's latest recorded review).
    """
    errors: list[FieldError] = []
    bad = set(unreadable)

    def readable(*names: str) -> bool:
        return not bad.intersection(names)

    if not fields.phone_numbers and readable("phone_numbers"):
        errors.append(FieldError("phone_numbers", "at least one number is required"))
    if not fields.categories and readable("categories"):
        errors.append(FieldError("categories", "at least one category is required"))
    if readable("starts_on", "ends_on") and fields.ends_on <= fields.starts_on:
        errors.append(
            FieldError("ends_on", "must be after the start date (policy 5.1: say how long)"))
    # A review date is judged only against a valid period (a bad end date is its own error).
    if (
        readable("review_on", "starts_on", "ends_on")
        and fields.review_on
        and fields.starts_on < fields.ends_on
        and not fields.starts_on <= fields.review_on <= fields.ends_on
    ):
        errors.append(FieldError("review_on", "must fall between the start and end dates"))
    elif readable("review_on", "starts_on", "ends_on") and fields.review_on and (
            fields.lifted_at is None and fields.starts_on < fields.ends_on):
        late = review_date_problem(fields.starts_on, fields.ends_on, fields.review_on,
                                   max_review_months, last_reviewed_on)
        if late:
            errors.append(FieldError("review_on", late))
    if readable("decided_on", "starts_on") and fields.decided_on > fields.starts_on:
        errors.append(FieldError("decided_on", "must not be after the start date"))

    # policy 4.1: written contact is a form of contact; a phone restriction must leave a route.
    if readable("written_only", "call_windows") and fields.written_only and fields.call_windows:
        errors.append(FieldError("call_windows", "cannot be set when contact is written only"))
    if readable("written_only", "call_frequency") and fields.written_only and (
            fields.call_limits.limits_frequency):
        errors.append(FieldError("call_frequency", "cannot be set when contact is written only"))
    if readable("written_only", "max_call_minutes") and fields.written_only and (
            fields.call_limits.limits_length):
        errors.append(FieldError("max_call_minutes", "cannot be set when contact is written only"))
    if readable("written_only", "call_windows", "designated_contact") and not (
        fields.written_only or fields.call_windows or fields.designated_contact
        or fields.call_limits
    ):
        errors.append(
            FieldError(
                "written_only",
                "no form of contact is left (policy 4.1): choose written only, "
                "set call windows, or name a designated contact",
            )
        )
    # Equality Act 2010: written only cannot be a route for someone writing is a barrier to.
    barrier = written_only_problem(fields.written_only, fields.adjustments,
                                   fields.written_only_exception)
    # The needs that could be read are judged even when another in the cell could not.
    if barrier and readable("written_only", "written_only_exception"):
        errors.append(FieldError("written_only_exception", barrier))
    if readable("representatives", "phone_numbers"):
        errors += [FieldError("representatives", problem) for problem in
                   representative_problems(fields.representatives, fields.phone_numbers)]
    if readable("fallback", "designated_contact") and fields.fallback and not (
        fields.designated_contact
    ):
        errors.append(FieldError("fallback", "needs a designated contact to fall back from"))

    if (
        readable("decided_by")
        and fields.decided_by
        and not may(staff_roles.get(fields.decided_by), Capability.DECIDE_RESTRICTIONS)
    ):
        role = staff_roles.get(fields.decided_by)
        article = "an" if (role or " ")[0] in "aeiou" else "a"
        why = ("is not a known staff member" if role is None
               else f"is {article} {role}, not a manager")
        errors.append(FieldError("decided_by", f"{fields.decided_by} {why} (policy 5.2)"))
    if (
        readable("designated_contact")
        and fields.designated_contact
        and fields.designated_contact not in staff_roles
    ):
        errors.append(
            FieldError(
                "designated_contact", f"{fields.designated_contact} is not a known staff member"
            )
        )
    if readable("fallback") and fields.fallback and fields.fallback != VOICEMAIL:
        if fields.fallback not in staff_roles:
            errors.append(FieldError("fallback", f"{fields.fallback} is not a known staff member"))
        elif readable("designated_contact") and fields.fallback == fields.designated_contact:
            errors.append(FieldError("fallback", "must differ from the designated contact"))
    if readable("lifted_by") and fields.lifted_by and fields.lifted_by not in staff_roles:
        errors.append(FieldError("lifted_by", f"{fields.lifted_by} is not a known staff member"))

    for number in fields.phone_numbers:
        holder = number_holders.get(number)
        if holder and holder != fields.customer_ref:
            errors.append(
                FieldError("phone_numbers", f"{number} already belongs to active entry {holder}")
            )
    for number in (n for rep in fields.representatives for n in rep.phone_numbers):
        holder = number_holders.get(number)
        if holder and holder != fields.customer_ref:
            errors.append(FieldError("representatives",
                                     f"{number} is the number of active entry {holder}"))
    return errors


def entry_status(starts_on: date, ends_on: date, lifted_at: datetime | None, today: date) -> Status:
    """Upcoming, active, lapsed or lifted; ends_on is the last day the restriction applies."""
    if lifted_at is not None:
        return Status.LIFTED
    if today < starts_on:
        return Status.UPCOMING
    if today > ends_on:
        return Status.LAPSED
    return Status.ACTIVE


def _flag_text(value: bool) -> str:
    return "yes" if value else "no"


def _date_text(value: date | None) -> str:
    return value.isoformat() if value else ""


def entry_row(fields: EntryFields) -> dict[str, str]:
    """The CSV row for an entry; parse_entry reads it back to equal fields."""
    return {
        "customer_ref": fields.customer_ref,
        "name": fields.name,
        "phone_numbers": "; ".join(fields.phone_numbers),
        "categories": "; ".join(c.value for c in fields.categories),
        "reason": fields.reason,
        "written_only": _flag_text(fields.written_only),
        "call_windows": fields.call_windows,
        "designated_contact": fields.designated_contact,
        "fallback": fields.fallback,
        "visits_by_appointment": _flag_text(fields.visits_by_appointment),
        "call_frequency": fields.call_limits.frequency_text,
        "max_call_minutes": fields.call_limits.minutes_text,
        "closed_issues": "; ".join(str(issue) for issue in fields.closed_issues),
        "staff_notes": fields.staff_notes,
        "postal_address": fields.postal_address,
        "evidence": evidence_text(fields.evidence),
        "no_warning_reason": fields.no_warning_reason,
        "not_told_reason": fields.not_told_reason,
        "decided_by": fields.decided_by,
        "decided_on": _date_text(fields.decided_on),
        "starts_on": _date_text(fields.starts_on),
        "ends_on": _date_text(fields.ends_on),
        "review_on": _date_text(fields.review_on),
        "notice_sent_on": _date_text(fields.notice_sent_on),
        "lifted_at": fields.lifted_at.isoformat() if fields.lifted_at else "",
        "lifted_by": fields.lifted_by,
        "lifted_reason": fields.lifted_reason,
        "adjustments": adjustments_text(fields.adjustments),
        "written_only_exception": fields.written_only_exception,
        "representatives": representatives_text(fields.representatives),
    }


@dataclass(frozen=True)
class Restriction:
    """What the call path needs of an entry, and no more personal data than routing needs."""

    entry_id: int
    starts_on: date
    ends_on: date
    written_only: bool
    call_windows: str
    designated_contact_id: int | None
    fallback_contact_id: int | None
    # A call from a representative's number: the arrangements apply only if they are covered.
    representative: bool = False
    covered: bool = True
    call_limits: CallLimits = NO_LIMITS

    def applies_on(self, day: date) -> bool:
        """True when the restriction is in force on this local date."""
        return self.starts_on <= day <= self.ends_on

    def to_cache(self) -> dict[str, object]:
        """A compact, JSON-ready form for the routing cache."""
        return {
            "id": self.entry_id,
            "s": self.starts_on.isoformat(),
            "e": self.ends_on.isoformat(),
            "w": int(self.written_only),
            "cw": self.call_windows,
            "dc": self.designated_contact_id,
            "fb": self.fallback_contact_id,
            **({"rp": int(self.covered)} if self.representative else {}),
            **({"cl": self.call_limits.to_cache()} if self.call_limits else {}),
        }

    @classmethod
    def from_cache(cls, data: Mapping[str, object]) -> Restriction:
        """Rebuild from to_cache's form."""
        return cls(
            entry_id=int(data["id"]),
            starts_on=date.fromisoformat(str(data["s"])),
            ends_on=date.fromisoformat(str(data["e"])),
            written_only=bool(data["w"]),
            call_windows=str(data["cw"]),
            designated_contact_id=None if data["dc"] is None else int(data["dc"]),
            fallback_contact_id=None if data["fb"] is None else int(data["fb"]),
            representative="rp" in data,
            covered=bool(data.get("rp", 1)),
            call_limits=CallLimits.from_cache(data.get("cl")),
        )
