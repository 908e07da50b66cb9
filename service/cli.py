"""The `callflow` command line: database, register, staff, demo data and the whole service."""

from __future__ import annotations

import json
import sys
from functools import cache

import click
from sqlalchemy import func, select
from tqdm import tqdm

from callflow import words
from callflow.appeals import AppealOutcome, Channel
from callflow.board_report import PeriodError, check_period
from callflow.phone import display
from callflow.register import CATEGORY_LABELS, Category, EntryInvalid, entry_status, parse_date
from callflow.reviews import ReviewDecision, ReviewOutcome
from callflow.roles import Role
from callflow.triage import TriageOutcome, read_decision
from config.clock import local_today, now_utc
from console.auth import disable_staff
from console.tokens import issue_token
from service.cli_context import command_services
from service.cli_run import COMMANDS
from store import migrate
from store.db import transaction
from store.evidence import evidence_links
from store.models import Staff
from store.register import RegisterStore, arrangements_text, fields_of
from usecases import triage
from usecases.adjustments import record_needs
from usecases.appeals import decide_appeal, record_appeal
from usecases.board_report import board_report, period_words, report_csv, report_pdf
from usecases.bootstrap import Services
from usecases.notices import Notices
from usecases.register_csv import ImportRefused, export_register, import_register
from usecases.reviews import record_review
from usecases.staff import StaffInvalid, add_staff
from usecases.subject_access import subject_access


@cache
def services() -> Services:
    """Settings and connections for this command, read once."""
    return command_services()


@click.group()
def main() -> None:
    """callflow: the person-of-interest policy in a Twilio contact centre."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied."""
    migrate.upgrade(services().engine)
    click.echo("database is up to date")


@main.group()
def register() -> None:
    """The person-of-interest register."""


@register.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option(
    "--by",
    "actor",
    default="import",
    show_default=True,
    help="Who is importing, for the audit trail.",
)
def register_import(csv_file, actor: str) -> None:
    """Import a CSV from the housing system, all or nothing."""
    s = services()
    now = now_utc()
    try:
        report = import_register(
            csv_file,
            s.register,
            f"import:{actor}",
            now,
            local_today(s.settings.tz, now),
            progress=lambda rows: tqdm(
                rows, desc="importing", unit="entry", disable=len(rows) < 200, file=sys.stderr
            ),
        )
    except ImportRefused as refused:
        for error in refused.errors:
            click.echo(f"{csv_file.name}: {error}", err=True)
        raise click.ClickException(str(refused)) from None
    click.echo(
        f"imported: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged"
    )


@register.command("export")
def register_export() -> None:
    """Write the register as CSV to standard output."""
    export_register(sys.stdout, services().register)


@register.command("list")
def register_list() -> None:
    """One line per entry: reference, status, dates, arrangements."""
    s = services()
    today = local_today(s.settings.tz)
    with s.sessions() as session:
        entries = list(RegisterStore(session).entries())
        if not entries:
            click.echo("the register is empty")
            return
        click.echo(f"{'Reference':<12} {'Status':<9} {'Starts':<15} {'Ends':<15} Arrangements")
        for entry in entries:
            status = entry_status(entry.starts_on, entry.ends_on, entry.lifted_at, today)
            click.echo(
                f"{entry.customer_ref:<12} {status.value.capitalize():<9} "
                f"{words.short_date(entry.starts_on):<15} {words.short_date(entry.ends_on):<15} "
                f"{arrangements_text(entry)}"
            )


@register.command("show")
@click.argument("customer_ref")
def register_show(customer_ref: str) -> None:
    """Everything on one entry, for a person at a terminal."""
    s = services()
    with s.sessions() as session:
        entry = RegisterStore(session).get(customer_ref)
        if entry is None:
            raise click.ClickException(f"{customer_ref} is not on the register")
        fields = fields_of(entry)
        status = entry_status(
            entry.starts_on, entry.ends_on, entry.lifted_at, local_today(s.settings.tz)
        )
        lines = [
            ("Reference", fields.customer_ref),
            ("Name", fields.name),
            ("Status", status.value.capitalize()),
            ("Numbers", ", ".join(display(n) for n in fields.phone_numbers)),
            ("Categories", "; ".join(CATEGORY_LABELS[Category(c)] for c in fields.categories)),
            ("Reason", fields.reason),
            ("Arrangements", arrangements_text(entry) or "-"),
            ("Closed issues (4.7)", "; ".join(map(str, fields.closed_issues)) or "-"),
            ("Staff notes", fields.staff_notes or "-"),
            ("Postal address", ", ".join(fields.postal_address.splitlines()) or "-"),
            ("Evidence (5.1)", "; ".join(map(str, fields.evidence)) or "-"),
            ("Linked to them", evidence_links(session, customer_ref).counts.text),
            ("No warning letter", fields.no_warning_reason or "-"),
            ("Not told, because", fields.not_told_reason or "-"),
            ("Needs", "; ".join(a.label for a in fields.adjustments) or "-"),
            ("Representatives", "; ".join(
                f"{r.description}, {'covered' if r.covered else 'not covered'}"
                for r in fields.representatives) or "-"),
            ("Decided", f"{words.short_date(fields.decided_on)} by {fields.decided_by}"),
            ("In force", f"{words.short_date(fields.starts_on)} to "
                         f"{words.short_date(fields.ends_on)}"),
            ("Review on", words.short_date(fields.review_on) or "-"),
            ("Notice sent", words.short_date(fields.notice_sent_on) or "not yet"),
        ]
        if entry.lifted_at:
            lines.append(
                (
                    "Lifted",
                    f"{words.local_moment(entry.lifted_at, s.settings.tz)} by "
                    f"{entry.lifted_by.email}: {entry.lifted_reason}",
                )
            )
        for label, value in lines:
            click.echo(f"{label + ':':<21}{value}")


@register.command("lift")
@click.argument("customer_ref")
@click.option("--by", "manager", required=True, help="The manager lifting it (email).")
@click.option("--reason", required=True, help="Why it is lifted early.")
@click.option("--not-told-reason", default="",
              help="Why the customer is not told in writing (for example their safety); "
                   "no letter is produced then.")
def register_lift(customer_ref: str, manager: str, reason: str, not_told_reason: str) -> None:
    """Lift an entry before its end date and produce the letter telling the customer."""
    s = services()
    now = now_utc()
    try:
        letter = Notices(s.register, s.settings).lift(
            customer_ref, manager.lower(), reason, now, local_today(s.settings.tz, now),
            not_told_reason)
    except (LookupError, PermissionError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    told = (f"letter {letter} produced" if letter is not None
            else "no letter: the customer is not told in writing")
    click.echo(f"{customer_ref} lifted; {told}")


def _letter_words(kind: str, letter_id: int | None) -> str:
    """What became of a step's letter: produced, or none as the customer is not told."""
    if letter_id is None:
        return "no letter: the customer is not told in writing"
    return f"{kind} {letter_id} produced"


def _refused(error: Exception) -> click.ClickException:
    """A register refusal as the command line says it: each problem on its own line."""
    if isinstance(error, EntryInvalid):
        return click.ClickException("\n".join(
            f"{OPTION_NAMES.get(e.field, e.field)}: {e.message}" for e in error.errors))
    return click.ClickException(str(error))


# The field a rule names, as the option that sets it on the command line.
OPTION_NAMES = {"review_on": "--next-review", "received_on": "--received",
                "reasons": "--reasons", "outcome": "--outcome", "channel": "--channel",
                "grounds": "--grounds", "adjustments": "--need",
                "representatives": "--representative",
                "written_only_exception": "--written-only-exception"}


@register.command("review")
@click.argument("customer_ref")
@click.option("--by", "manager", required=True, help="The manager who reviewed it (email).")
@click.option("--outcome", required=True, type=click.Choice([o.value for o in ReviewOutcome]),
              help="continue (with --next-review), vary (then edit the entry) or lift.")
@click.option("--reasons", required=True, help="Why; the customer's letter says so.")
@click.option("--next-review", default="", help="The next review date (not when lifting).")
def register_review(customer_ref: str, manager: str, outcome: str, reasons: str,
                    next_review: str) -> None:
    """Record a review of an entry and produce the outcome letter."""
    s = services()
    now = now_utc()
    try:
        next_on = parse_date(next_review) if next_review else None
    except ValueError as error:
        raise click.ClickException(f"--next-review: {error}") from None
    try:
        recorded = record_review(s.register, s.settings, customer_ref, manager, ReviewDecision(
            ReviewOutcome(outcome), reasons, next_on), now, local_today(s.settings.tz, now))
    except (LookupError, PermissionError, ValueError) as error:
        raise _refused(error) from None
    click.echo(f"{customer_ref}: review recorded ({recorded.outcome.label.lower()}); "
               f"{_letter_words('outcome letter', recorded.letter_id)}")
    if recorded.outcome is ReviewOutcome.VARY:
        click.echo("now change the arrangements (the workspace's edit form or an import); "
                   "that produces the new restriction notice")


@register.command("appeal")
@click.argument("customer_ref")
@click.option("--by", "recorder", required=True, help="Who records it (email).")
@click.option("--received", required=True, help="The day it was received (2026-12-01).")
@click.option("--channel", required=True, type=click.Choice([c.value for c in Channel]),
              help="How it arrived.")
@click.option("--grounds", required=True, help="Why the customer disagrees.")
def register_appeal(customer_ref: str, recorder: str, received: str, channel: str,
                    grounds: str) -> None:
    """Record an appeal as received and produce the acknowledgement letter."""
    s = services()
    now = now_utc()
    try:
        recorded = record_appeal(s.register, s.settings, customer_ref, recorder, {
            "received_on": received, "channel": channel, "grounds": grounds,
        }, now, local_today(s.settings.tz, now))
    except (LookupError, PermissionError, ValueError) as error:
        raise _refused(error) from None
    click.echo(f"{customer_ref}: appeal recorded, to be decided by "
               f"{recorded.decide_by.isoformat()}; "
               f"{_letter_words('acknowledgement letter', recorded.letter_id)}")


@register.command("appeal-decision")
@click.argument("customer_ref")
@click.option("--by", "manager", required=True,
              help="The deciding manager (email): not the one who decided or last reviewed it.")
@click.option("--outcome", required=True, type=click.Choice([o.value for o in AppealOutcome]),
              help="upheld, varied (then edit the entry) or quashed (lifts it).")
@click.option("--reasons", required=True, help="Why; the customer's letter says so.")
def register_appeal_decision(customer_ref: str, manager: str, outcome: str,
                             reasons: str) -> None:
    """Decide an entry's open appeal and produce the outcome letter."""
    s = services()
    now = now_utc()
    try:
        decided = decide_appeal(s.register, s.settings, customer_ref, manager, {
            "outcome": outcome, "reasons": reasons,
        }, now, local_today(s.settings.tz, now))
    except (LookupError, PermissionError, ValueError) as error:
        raise _refused(error) from None
    click.echo(f"{customer_ref}: appeal {decided.outcome.value}; "
               f"{_letter_words('outcome letter', decided.letter_id)}")


@register.command("needs")
@click.argument("customer_ref")
@click.option("--by", "manager", required=True, help="The manager recording them (email).")
@click.option("--need", "needs", multiple=True,
              help="A need, repeated for each: large_print, easy_read, british_sign_language, "
                   "relay_uk, \"interpreter: LANGUAGE\", help_with_writing, \"other: WORDS\". "
                   "Replaces the needs recorded.")
@click.option("--no-needs", is_flag=True, help="Clear the needs recorded.")
@click.option("--representative", "representatives", multiple=True,
              help="\"Name | relationship | numbers, comma separated | covered or not covered\","
                   " repeated for each. Replaces the representatives recorded.")
@click.option("--no-representatives", is_flag=True, help="Clear the representatives.")
@click.option("--written-only-exception", default=None,
              help="Why written contact only still suits them though writing is a barrier, "
                   "and what replaces it.")
def register_needs(customer_ref: str, manager: str, needs: tuple[str, ...], no_needs: bool,
                   representatives: tuple[str, ...], no_representatives: bool,
                   written_only_exception: str | None) -> None:
    """Record a person's needs (reasonable adjustments) and representatives on their entry."""
    changes: dict[str, str] = {}
    if needs or no_needs:
        changes["adjustments"] = "; ".join(needs)
    if representatives or no_representatives:
        changes["representatives"] = "; ".join(representatives)
    if written_only_exception is not None:
        changes["written_only_exception"] = written_only_exception
    if not changes:
        raise click.UsageError("say what to record: --need, --representative, "
                               "--written-only-exception, --no-needs or --no-representatives")
    s = services()
    now = now_utc()
    try:
        saved = record_needs(s.register, customer_ref, manager, changes, now,
                             local_today(s.settings.tz, now))
    except (LookupError, PermissionError, ValueError) as error:
        raise _refused(error) from None
    click.echo(f"{customer_ref}: {'unchanged' if saved.action == 'unchanged' else 'recorded'}")


@main.group("triage")
def triage_group() -> None:
    """Voicemails and messages left by people on the register (policy 4.7)."""


@triage_group.command("list")
def triage_list() -> None:
    """What is waiting for an outcome, oldest first, overdue ones marked."""
    s = services()
    today = local_today(s.settings.tz)
    waiting = triage.waiting(s.sessions, s.settings.tz, s.settings.triage_due_days, today)
    for item in waiting:
        late = "  OVERDUE" if item.overdue else ""
        click.echo(f"{item.id:>6}  {item.customer_ref:<12} {item.source.label:<10} came in "
                   f"{words.local_moment(item.received_at, s.settings.tz)}, due by "
                   f"{words.short_date(item.due_on)}{late}")
    click.echo(f"{len(waiting)} waiting, {sum(i.overdue for i in waiting)} overdue")


@triage_group.command("record")
@click.argument("item_id", type=int)
@click.option("--by", "handler", required=True, help="Who handled it (email).")
@click.option("--outcome", required=True, type=click.Choice([o.value for o in TriageOutcome]),
              help="What it was.")
@click.option("--notes", default="", help="What was done (needed unless the same closed issue).")
def triage_record(item_id: int, handler: str, outcome: str, notes: str) -> None:
    """Record what a voicemail or message was and who handled it."""
    decision, problems = read_decision(outcome, notes)
    if decision is None:
        raise click.ClickException("\n".join(f"--{field}: {message}"
                                              for field, message in problems))
    try:
        triage.record_outcome(services().sessions, item_id, decision, handler, now_utc())
    except (LookupError, PermissionError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"item {item_id}: {decision.outcome.label.lower()}")


@triage_group.command("catch-up")
def triage_catch_up() -> None:
    """Queue voicemails from the register the call log has not queued yet; safe to repeat."""
    click.echo(f"{triage.catch_up(services().sessions)} voicemail(s) queued")


@register.command("rebuild-cache")
def register_rebuild_cache() -> None:
    """Rebuild the Redis copy of the register the call path reads."""
    s = services()
    count = s.register.rebuild_cache(local_today(s.settings.tz))
    click.echo(f"routing cache rebuilt: {count} number(s)")


@main.group()
def staff() -> None:
    """Staff members."""


@staff.command("add")
@click.argument("email")
@click.option("--name", required=True)
@click.option(
    "--role", required=True, type=click.Choice([role.value for role in Role])
)
@click.option("--client-identity", default=None, help="Twilio Voice client identity.")
@click.option("--phone", default=None, help="A phone number to dial them on.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_add(
    email: str,
    name: str,
    role: str,
    client_identity: str | None,
    phone: str | None,
    password_stdin: bool,
) -> None:
    """Add a staff member; the password is prompted for."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with transaction(services().sessions) as session:
            member = add_staff(
                session,
                email=email,
                name=name,
                role=role,
                now=now_utc(),
                password=password,
                client_identity=client_identity,
                phone_number=phone,
            )
            click.echo(f"added {member.email} ({member.role})")
    except StaffInvalid as error:
        raise click.ClickException(str(error)) from None


@staff.command("list")
def staff_list() -> None:
    """Every staff member and role."""
    with services().sessions() as session:
        for member in session.scalars(select(Staff).order_by(Staff.role, Staff.email)):
            state = "" if member.active else " (disabled)"
            reach = member.client_identity or member.phone_number or "-"
            click.echo(f"{member.email:<32} {member.role:<11} {reach:<16} {member.name}{state}")


@main.group()
def demo() -> None:
    """Fictional demo data."""


@demo.command("seed")
def demo_seed() -> None:
    """Add demo staff and people of interest, once."""
    from usecases.demo import DEMO_PASSWORD, seed_demo

    s = services()
    now = now_utc()
    if seed_demo(s.register, now, local_today(s.settings.tz, now)):
        click.echo(f"demo data added; staff sign in with password {DEMO_PASSWORD!r}")
    else:
        click.echo("staff already exist; demo data not added")


@main.group()
def events() -> None:
    """Call events the call log refused (dead letters)."""


@events.command("dead-letters")
def events_dead_letters() -> None:
    """List the call events set aside, oldest first, with what went wrong."""
    from store.dead_letters import DeadLetters, plain_reason

    s = services()
    with s.sessions() as session:
        letters = DeadLetters(session).listing()
    if not letters:
        click.echo("no dead letters: every call event reached the call log")
        return
    for letter in letters:
        when = words.local_moment(letter.failed_at, s.settings.tz, seconds=True)
        click.echo(f"{letter.id:>6}  {when}  {letter.call_sid or '-':<34}  "
                   f"tried {letter.attempts}x  {plain_reason(letter.error_type)} "
                   f"Details: {letter.error}")


@events.command("retry")
@click.argument("letter_ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Retry every dead letter.")
def events_retry(letter_ids: tuple[int, ...], every: bool) -> None:
    """Record dead letters in the call log again; each one recorded is removed."""
    from workers.context import use_services
    from workers.pump import retry_dead_letters

    if bool(letter_ids) == every:
        raise click.UsageError("give the numbers of the dead letters to retry, or --all")
    use_services(services())
    recorded, refused = retry_dead_letters(None if every else list(letter_ids))
    click.echo(f"{recorded} recorded in the call log, {refused} still refused")
    if refused:
        sys.exit(1)


@staff.command("token")
@click.argument("email")
@click.option("--label", default="", help="What the token is for (a Flex plugin, a CRM).")
def token_command(email: str, label: str) -> None:
    """Issue an API token for a staff member; it is shown once and stored only as a hash."""
    with transaction(services().sessions) as session:
        staff = session.scalar(select(Staff).where(func.lower(Staff.email) == email.lower()))
        if staff is None:
            raise click.ClickException(f"no staff member {email}")
        if not staff.active:
            raise click.ClickException(f"{staff.email} is disabled")
        token = issue_token(session, staff, now_utc(), label)
    click.echo(token)
    click.echo(f"API token for {staff.email} ({staff.role}); it will not be shown again.",
               err=True)


@staff.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Disable a staff member: their sessions and API tokens end at once."""
    try:
        staff = disable_staff(services(), email, now_utc())
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{staff.email} disabled; sessions ended and API tokens revoked")


@main.command("subject-access")
@click.argument("customer_ref")
def subject_access_command(customer_ref: str) -> None:
    """Print, as JSON, everything held about a person (a subject access request)."""
    record = subject_access(services().sessions, customer_ref)
    if record is None:
        raise click.ClickException(f"nothing is held under {customer_ref}")
    click.echo(json.dumps(record, indent=2, ensure_ascii=False, default=str))


@main.command("board-report")
@click.option("--from", "first", required=True, help="The first day of the period (2026-11-01).")
@click.option("--to", "last", required=True, help="The last day of the period (2026-11-30).")
@click.option("--pdf", "pdf_file", type=click.File("wb"), default=None,
              help="Write the report as a PDF to this file instead of CSV to the screen.")
def board_report_command(first: str, last: str, pdf_file) -> None:
    """The board's oversight report for a period: CSV to standard output, or a PDF file."""
    problems = []
    days = {}
    for name, raw in (("--from", first), ("--to", last)):
        try:
            days[name] = parse_date(raw)
        except ValueError as error:
            problems.append(f"{name}: {error}")
    try:
        period = check_period(days.get("--from"), days.get("--to")) if not problems else None
    except PeriodError as refused:
        problems += [f"--{field}: {message}"
                     for field, message in refused.errors]
    if problems:
        raise click.ClickException("; ".join(problems))
    report = board_report(services(), period, local_today(services().settings.tz))
    if pdf_file is not None:
        pdf_file.write(report_pdf(report))
        click.echo(f"oversight report for {period_words(period)} written", err=True)
    else:
        click.echo(report_csv(report), nl=False)


for command in COMMANDS:
    main.add_command(command)


if __name__ == "__main__":
    main()
