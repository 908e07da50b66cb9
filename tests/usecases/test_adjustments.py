"""Needs and representatives against a real database and Redis: saved and audited, exported and
imported without loss, and a representative's number known to the call path."""

import csv
import io
import re
import zlib
from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from callflow.adjustments import Adjustment, Need
from callflow.register import COLUMNS, EntryInvalid
from callflow.representatives import Representative
from store.lookup import RegisterLookup
from store.models import AuditRecord
from store.register import RegisterStore
from tests.conftest import NOW, TODAY
from tests.workspace import add_entry, entry_form
from usecases.adjustments import large_print, screen_pop
from usecases.notices import Notices, letter_pdf
from usecases.register_csv import ImportRefused, export_register, import_register

MANAGER = "manager@example.org"
REPS = ("Jo Bloggs | advocate | 07700 900456 | covered; "
        "Sam Example | daughter | 07700 900789 | not covered")


def audits(services, action: str) -> list[dict]:
    with services.sessions() as session:
        return [a.changes for a in session.scalars(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id))]


def test_needs_and_representatives_are_saved_and_read_back(services, staff):
    add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
              adjustments="large_print; interpreter: Polish", representatives=REPS)
    fields = next(services.register.every_entry())
    assert fields.adjustments == (Adjustment(Need.LARGE_PRINT),
                                  Adjustment(Need.INTERPRETER, "Polish"))
    assert fields.representatives == (
        Representative("Jo Bloggs", "advocate", ("+447700900456",), True),
        Representative("Sam Example", "daughter", ("+447700900789",), False))
    created = audits(services, "created")[0]
    assert created["adjustments"] == ["", "Large print; Interpreter: Polish"]
    assert created["representatives"] == ["", "Jo Bloggs | advocate | +447700900456 | covered; "
                                              "Sam Example | daughter | +447700900789 | "
                                              "not covered"]


def test_a_change_of_needs_is_audited_with_before_and_after(services, staff):
    add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
              adjustments="large_print")
    fields = next(services.register.every_entry())
    services.register.save(replace(fields, adjustments=(Adjustment(Need.BSL),)), MANAGER,
                           NOW, TODAY)
    assert audits(services, "updated") == [
        {"adjustments": ["Large print", "British Sign Language"]}]


def test_written_only_for_someone_who_needs_help_with_writing_is_refused_until_explained(
        services, staff):
    with pytest.raises(EntryInvalid) as refused:
        add_entry(services, adjustments="help_with_writing")
    assert [e.field for e in refused.value.errors] == ["written_only_exception"]
    add_entry(services, adjustments="help_with_writing",
              written_only_exception="Their advocate writes for them; letters are read to them")
    assert next(services.register.every_entry()).written_only_exception == (
        "Their advocate writes for them; letters are read to them")


def lookup(services, number: str):
    return RegisterLookup(services.routing_cache, services.sessions).lookup(number, TODAY)


def test_the_call_path_knows_a_representatives_number_and_whether_they_are_covered(
        services, staff):
    add_entry(services, representatives=REPS)
    with services.sessions() as session:
        store = RegisterStore(session)
        from_database = [store.restriction_for(n, TODAY) for n in (
            "+447700900456", "+447700900789", "+447700900123")]
    from_cache = [lookup(services, n) for n in ("+447700900456", "+447700900789",
                                                "+447700900123")]
    assert [found.source for found in from_cache] == ["cache", "cache", "cache"]
    for covered, uncovered, own in (from_database, [f.restriction for f in from_cache]):
        assert (covered.representative, covered.covered) == (True, True)
        assert (uncovered.representative, uncovered.covered) == (True, False)
        assert own.representative is False
        assert covered.entry_id == uncovered.entry_id == own.entry_id


def test_a_single_save_brings_representatives_into_the_cache_and_a_lift_takes_them_out(
        services, staff):
    services.register.rebuild_cache(TODAY)
    add_entry(services, representatives=REPS)
    assert lookup(services, "+447700900456").source == "cache"
    assert lookup(services, "+447700900456").restriction.covered is True
    fields = next(services.register.every_entry())
    services.register.save(replace(fields, representatives=()), MANAGER, NOW, TODAY)
    assert lookup(services, "+447700900456").restriction is None
    services.register.save(fields, MANAGER, NOW, TODAY)
    services.register.lift("QL-1", MANAGER, "Behaviour has improved", NOW)
    assert lookup(services, "+447700900456").restriction is None
    assert lookup(services, "+447700900456").source == "cache"
    with services.sessions() as session:
        assert RegisterStore(session).restriction_for("+447700900456", TODAY) is None


def export_text(services) -> str:
    out = io.StringIO()
    export_register(out, services.register)
    return out.getvalue()


def test_the_csv_round_trip_keeps_needs_and_representatives(services, staff):
    add_entry(services, written_only="yes", adjustments="easy_read; other: extra time",
              written_only_exception="Easy read letters, and their advocate reads them through",
              representatives=REPS)
    exported = export_text(services)
    row = next(csv.DictReader(io.StringIO(exported)))
    assert (row["adjustments"], row["representatives"]) == (
        "Easy read; Other: extra time",
        "Jo Bloggs | advocate | +447700900456 | covered; "
        "Sam Example | daughter | +447700900789 | not covered")
    report = import_register(io.StringIO(exported), services.register, "import:test", NOW,
                             TODAY)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert export_text(services) == exported


def test_every_bad_needs_or_representatives_cell_is_reported_with_its_line_and_column(
        services, staff):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(entry_form(adjustments="braille"))
    writer.writerow(entry_form(customer_ref="QL-2", phone_numbers="07700 900321",
                               representatives="Jo | advocate | 07700 900456 | maybe"))
    with pytest.raises(ImportRefused) as refused:
        import_register(io.StringIO(out.getvalue()), services.register, "import:test", NOW,
                        TODAY)
    assert [str(e) for e in refused.value.errors] == [
        "line 2, adjustments: 'braille' is not a need we record; use one of Large print, "
        "Easy read, British Sign Language, Relay UK text relay, Interpreter, Help with "
        "writing, Other",
        "line 3, representatives: representative 1 (Jo): 'maybe': write covered or not covered",
    ]


def test_the_screen_pop_shows_the_needs_and_whose_representative_is_calling(services, staff):
    add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
              adjustments="large_print; interpreter: Polish", representatives=REPS)
    with services.sessions() as session:
        entry = RegisterStore(session).get("QL-1")
        from_person = screen_pop(entry, "+447700900123")
        from_daughter = screen_pop(entry, "+447700900789")
        letters_large = large_print(entry)
    assert from_person == {"needs": ["Large print", "Interpreter: Polish"],
                           "representative": None}
    assert from_daughter["representative"] == {
        "of": "representative of Pat Example", "name": "Sam Example",
        "relationship": "daughter", "covered": False}
    assert letters_large is True


@pytest.fixture
def cli(services, monkeypatch):
    from service import cli as service_cli

    monkeypatch.setattr(service_cli, "services", lambda: services)
    return lambda *args: CliRunner().invoke(service_cli.main, list(args))


def test_the_command_line_records_needs_and_reports_every_problem_by_option(cli, services,
                                                                            staff):
    add_entry(services)
    refused = cli("register", "needs", "QL-1", "--by", MANAGER, "--need", "help_with_writing",
                  "--need", "interpreter", "--representative", "Jo | friend | 123 | covered")
    assert refused.exit_code == 1
    assert refused.output == (
        "Error: --need: Interpreter: say which language, for example Interpreter: Polish\n"
        "--representative: representative 1 (Jo): '123' cannot be a real number\n"
        "--written-only-exception: written contact only was chosen but the person needs help "
        "with writing, so writing may be a barrier: choose call times or a designated contact "
        "instead, or say here why written contact only is still right and what replaces it "
        "(for example an advocate who writes for them)\n")
    by_agent = cli("register", "needs", "QL-1", "--by", "alex@example.org", "--need", "bsl")
    assert by_agent.output == ("Error: alex@example.org is an agent; only a manager changes a "
                               "restriction (policy 5.2)\n")
    done = cli("register", "needs", "QL-1", "--by", MANAGER, "--need", "large_print",
               "--representative", "Jo Bloggs | advocate | 07700 900456 | not covered")
    assert (done.exit_code, done.output) == (0, "QL-1: recorded\n")
    shown = cli("register", "show", "QL-1").output
    assert "Needs:               Large print\n" in shown
    assert "Representatives:     Jo Bloggs (advocate), not covered\n" in shown
    assert audits(services, "updated") == [{
        "adjustments": ["", "Large print"],
        "representatives": ["", "Jo Bloggs | advocate | +447700900456 | not covered"]}]


def font_sizes(pdf: bytes) -> set[float]:
    """The font sizes a PDF's pages set (its "Tf" operators), from its compressed streams."""
    sizes = set()
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        sizes |= {float(s) for s in re.findall(rb"/F\d+ ([\d.]+) Tf", content)}
    return sizes


def test_letters_come_in_large_print_when_the_persons_needs_ask(services, staff):
    add_entry(services, written_only="no", call_windows="Tue 10:00-12:00",
              adjustments="large_print")
    add_entry(services, customer_ref="QL-2", phone_numbers="07700 900321")
    notices = Notices(services.register, services.settings)
    large_id = notices.produce_restriction("QL-1", staff["manager"].id, NOW, TODAY)
    normal_id = notices.produce_restriction("QL-2", staff["manager"].id, NOW, TODAY)
    _, large = notices.pdf(large_id)
    _, normal = notices.pdf(normal_id)
    assert font_sizes(large) == {16.0, 18.0}
    assert font_sizes(normal) == {11.0, 12.0}
    assert font_sizes(letter_pdf("# Heading\nText", "t", large_print=True)) == {16.0, 18.0}
