"""The register in the database and in Redis: import, export, audit, cache, fallback."""

import io
import re
import time
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from callflow.register import COLUMNS, parse_entry
from store.embedded_redis import EmbeddedRedis
from store.lookup import RegisterLookup
from store.models import AuditRecord, RegisterEntry
from store.redis_client import call_path_redis
from store.routing_cache import RoutingCache
from tests.conftest import NOW, TODAY
from usecases.register_csv import ImportRefused, export_register, import_register

HEADER = ("customer_ref,name,phone_numbers,categories,reason,written_only,call_windows,"
          "designated_contact,fallback,visits_by_appointment,closed_issues,staff_notes,"
          "decided_by,decided_on,starts_on,ends_on,review_on,notice_sent_on")

GOOD_CSV = f"""{HEADER},extra_column,evidence,no_warning_reason
QL-1,Pat Example,07700 900123,aggressive_abusive,Abuse of staff,yes,,,,no,,Letters only,manager@example.org,20/11/2026,2026-11-25,2027-05-31,2027-03-01,2026-11-25,ignored,written: call notes of 3 November,threats to staff
QL-2,Chris Sample,07700 900456;0191 496 0456,unreasonable_persistence,Daily calls,no,"Tue,Thu 10:00-12:00; Mon-Fri 14:00-15:30",alex@example.org,voicemail,yes,CMP-9: Kitchen refit,,manager@example.org,2026-11-20,2026-11-25,2027-05-31,2027-05-01,,x,written: letters of 1 and 8 November,warned in writing on QL
"""  # noqa: E501


def do_import(services, text, actor="import:test"):
    return import_register(io.StringIO(text), services.register, actor, NOW, TODAY)


def export_text(services):
    out = io.StringIO()
    export_register(out, services.register)
    return out.getvalue()


def test_a_clean_file_imports_every_row(services, staff):
    report = do_import(services, GOOD_CSV)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry).where(RegisterEntry.customer_ref == "QL-2"))
        assert [p.number for p in entry.phones] == ["+447700900456", "+441914960456"]
        assert entry.call_windows == "Mon-Fri 14:00-15:30; Tue,Thu 10:00-12:00"
        assert entry.designated_contact.email == "alex@example.org"
        assert entry.closed_issues == [{"reference": "CMP-9", "summary": "Kitchen refit"}]


def test_reimporting_the_same_file_changes_nothing_and_audits_nothing(services, staff):
    do_import(services, GOOD_CSV)
    with services.sessions() as session:
        audits = session.scalar(select(func.count(AuditRecord.id)))
    report = do_import(services, GOOD_CSV)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    with services.sessions() as session:
        assert session.scalar(select(func.count(AuditRecord.id))) == audits


def test_export_then_import_round_trips(services, staff):
    do_import(services, GOOD_CSV)
    exported = export_text(services)
    report = do_import(services, exported)
    assert report.unchanged == 2
    assert export_text(services) == exported
    assert exported.splitlines()[0] == ",".join(COLUMNS)


def test_a_bad_file_is_refused_whole_with_line_column_and_reason(services, staff):
    bad = GOOD_CSV + (
        "QL-3,Robin Test,12345,aggressive_abusive,Abuse,yes,,,,no,,,manager@example.org,"
        "2026-11-20,2026-11-25,2027-05-31,,,\n"
        "QL-4,Sam Other,07700 900999,aggressive_abusive,Abuse,yes,,,,no,,,alex@example.org,"
        "2026-11-20,2026-11-25,2026-11-01,,,\n"
        "QL-5,Lee Dup,07700 900123,aggressive_abusive,Abuse,yes,,,,no,,,manager@example.org,"
        "2026-11-20,2026-11-25,2027-05-31,,,\n"
    )
    with pytest.raises(ImportRefused) as refused:
        do_import(services, bad)
    messages = [str(e) for e in refused.value.errors]
    assert "line 4, phone_numbers: '12345' cannot be a real number" in messages
    assert "line 5, ends_on: must be after the start date (policy 5.1: say how long)" in messages
    assert any(m.startswith("line 5, decided_by: alex@example.org is an agent") for m in messages)
    assert "line 6, phone_numbers: +447700900123 already belongs to active entry QL-1" in messages
    with services.sessions() as session:
        assert session.scalar(select(func.count(RegisterEntry.id))) == 0


def test_a_file_missing_a_required_column_says_which(services, staff):
    with pytest.raises(ImportRefused) as refused:
        do_import(services, "customer_ref,name\nQL-1,Pat\n")
    assert "missing column(s): phone_numbers, categories" in str(refused.value.errors[0])


def test_a_semicolon_separated_excel_file_with_a_byte_order_mark_is_read(services, staff):
    text = "\ufeff" + HEADER.replace(",", ";") + ";evidence;no_warning_reason\n" + (
        "QL-7;Pat Example;07700 900123;aggressive_abusive;Abuse;YES;;;;no;;;"
        "manager@example.org;20/11/2026;25/11/2026;31/05/2027;01/05/2027;;"
        "written: call notes;threats to staff\n"
    )
    assert do_import(services, text).created == 1
    assert services.lookup.lookup("+447700900123", TODAY).restriction.written_only


def test_each_change_writes_an_audit_record_with_before_and_after(services, staff):
    do_import(services, GOOD_CSV, actor="import:first")
    changed = GOOD_CSV.replace("Letters only", "Letters to PO box only")
    report = do_import(services, changed, actor="import:second")
    assert report.updated == 1
    with services.sessions() as session:
        records = session.scalars(
            select(AuditRecord).where(AuditRecord.customer_ref == "QL-1").order_by(AuditRecord.id)
        ).all()
    assert [(r.action, r.actor) for r in records] == [("created", "import:first"),
                                                       ("updated", "import:second")]
    assert records[1].changes == {"staff_notes": ["Letters only", "Letters to PO box only"]}
    assert records[0].changes["customer_ref"] == ["", "QL-1"]


def test_saving_an_entry_refreshes_the_routing_cache(services, staff):
    services.register.rebuild_cache(TODAY)
    lookup = services.lookup
    assert lookup.lookup("07700 900123", TODAY).restriction is None
    do_import(services, GOOD_CSV)
    found = lookup.lookup("+447700900123", TODAY)
    assert found.source == "cache" and found.restriction.written_only

    fields, _ = parse_entry({**dict(zip(HEADER.split(","), GOOD_CSV.splitlines()[1].split(","),
                                        strict=False)), "phone_numbers": "07700 900777"})
    services.register.save(fields, "manager@example.org", NOW, TODAY)
    assert lookup.lookup("07700 900123", TODAY).restriction is None
    assert lookup.lookup("07700 900777", TODAY).restriction.written_only


def test_lifting_an_entry_drops_it_from_the_cache_and_audits_it(services, staff):
    do_import(services, GOOD_CSV)
    services.register.lift("QL-1", "manager@example.org", "Behaviour improved", NOW)
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None
    with services.sessions() as session:
        last = session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert (last.action, last.actor, last.changes["lifted_reason"][1]) == (
        "lifted", "manager@example.org", "Behaviour improved")


def test_only_a_manager_may_lift_an_entry(services, staff):
    do_import(services, GOOD_CSV)
    with pytest.raises(PermissionError):
        services.register.lift("QL-1", "alex@example.org", "I think so", NOW)


def test_a_restriction_that_has_not_started_or_has_lapsed_does_not_apply(services, staff):
    do_import(services, GOOD_CSV)
    assert services.lookup.lookup("07700 900123", date(2026, 11, 24)).restriction is None
    assert services.lookup.lookup("07700 900123", date(2026, 11, 25)).restriction is not None
    assert services.lookup.lookup("07700 900123", date(2027, 5, 31)).restriction is not None
    assert services.lookup.lookup("07700 900123", date(2027, 6, 1)).restriction is None


def test_an_incomplete_cache_is_not_trusted_and_the_database_answers(services, staff):
    do_import(services, GOOD_CSV)
    services.redis.delete("callflow:routing")
    found = services.lookup.lookup("07700 900123", TODAY)
    assert found.source == "database" and found.restriction.written_only
    assert services.register.sync_cache(TODAY) is True
    assert services.lookup.lookup("07700 900123", TODAY).source == "cache"
    assert services.register.sync_cache(TODAY) is False


def test_with_redis_stopped_the_lookup_falls_back_to_the_database_quickly(services, staff,
                                                                         tmp_path):
    do_import(services, GOOD_CSV)
    doomed = EmbeddedRedis(tmp_path / "doomed")
    cache = RoutingCache(call_path_redis(doomed.url))
    lookup = RegisterLookup(cache, services.call_path_sessions)
    assert lookup.lookup("07700 900123", TODAY).source == "database"  # never built there
    doomed.close()
    started = time.perf_counter()
    found = lookup.lookup("07700 900123", TODAY)
    elapsed = time.perf_counter() - started
    assert found.source == "database" and found.restriction.written_only and not found.failed
    assert elapsed < 1.0, f"fallback took {elapsed:.2f}s"


def test_with_redis_and_the_database_down_the_lookup_reports_failure(services, tmp_path):
    doomed = EmbeddedRedis(tmp_path / "doomed")
    cache = RoutingCache(call_path_redis(doomed.url))
    doomed.close()
    from store.db import make_engine, make_session_factory

    broken = make_session_factory(make_engine(
        "postgresql://nobody@127.0.0.1:1/none", call_path=True))
    found = RegisterLookup(cache, broken).lookup("07700 900123", TODAY)
    assert found.failed and found.restriction is None and found.number == "+447700900123"


def test_the_cli_lists_and_shows_the_register(services, staff, monkeypatch):
    do_import(services, GOOD_CSV)
    from service import cli

    monkeypatch.setattr(cli, "services", lambda: services)
    runner = CliRunner()
    listed = runner.invoke(cli.main, ["register", "list"])
    assert listed.exit_code == 0, listed.output
    assert "QL-2" in listed.output and "contact Agent, then voicemail" in listed.output
    shown = runner.invoke(cli.main, ["register", "show", "QL-2"])
    assert "Kitchen refit" in shown.output and "0191 496 0456" in shown.output
    # Dates as people write them, not as the database stores them.
    assert "In force:            Wed 25 Nov 2026 to Mon 31 May 2027" in shown.output
    assert not re.search(r"\d{4}-\d{2}-\d{2}", listed.output + shown.output)
    missing = runner.invoke(cli.main, ["register", "show", "QL-404"])
    assert missing.exit_code == 1 and "QL-404 is not on the register" in missing.output
