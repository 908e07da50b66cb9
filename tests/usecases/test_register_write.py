"""One way to write the register: checked once, saved in one transaction, by every path."""

import csv
import io

from sqlalchemy import func, select

from callflow.register import COLUMNS, FieldError, parse_entry
from store.models import AuditRecord, Notice, RegisterEntry
from tests.conftest import NOW, TODAY
from usecases.notices import Notices
from usecases.register_csv import export_register, import_register


def row(**changes):
    fields = {
        "customer_ref": "QL-1", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-05-31",
        "evidence": "written: letter of 3 November about calls to staff",
        "no_warning_reason": "threats of violence to staff (policy 4.3)",
    }
    fields.update(changes)
    return fields


def write(services, *rows, **options):
    return services.register.write(list(rows), "manager@example.org", NOW, TODAY, **options)


def notices_of(services, ref="QL-1"):
    with services.sessions() as session:
        return session.execute(select(Notice.id, Notice.withdrawn_at)
                               .where(Notice.customer_ref == ref)).all()


def audit_actions(services, ref="QL-1"):
    with services.sessions() as session:
        return list(session.scalars(select(AuditRecord.action).where(
            AuditRecord.customer_ref == ref).order_by(AuditRecord.id)))


def test_lifting_an_entry_through_the_import_withdraws_its_unsent_notices(services, staff):
    write(services, row())
    Notices(services.register, services.settings).produce_restriction(
        "QL-1", staff["manager"].id, NOW, TODAY)
    assert [withdrawn for _id, withdrawn in notices_of(services)] == [None]

    out = io.StringIO()
    export_register(out, services.register)
    exported = next(csv.DictReader(io.StringIO(out.getvalue())))
    lifted = {**exported, "lifted_at": NOW.isoformat(), "lifted_by": "manager@example.org",
              "lifted_reason": "Behaviour improved"}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(lifted)
    report = import_register(io.StringIO(text.getvalue()), services.register, "import:test",
                             NOW, TODAY)

    assert report.updated == 1
    assert [withdrawn for _id, withdrawn in notices_of(services)] == [NOW]
    assert audit_actions(services) == ["created", "lifted", "notice_withdrawn"]
    assert services.lookup.lookup("07700 900123", TODAY).restriction is None


def test_lifting_through_a_saved_entry_withdraws_its_unsent_notices_too(services, staff):
    write(services, row())
    Notices(services.register, services.settings).produce_restriction(
        "QL-1", staff["manager"].id, NOW, TODAY)
    fields, errors = parse_entry(row(lifted_at=NOW.isoformat(), lifted_by="manager@example.org",
                                     lifted_reason="Moved away"))
    assert not errors
    services.register.save(fields, "manager@example.org", NOW, TODAY)
    assert [withdrawn for _id, withdrawn in notices_of(services)] == [NOW]


def test_a_write_reports_every_problem_of_every_entry_and_saves_none(services, staff):
    result = write(services, row(), row(customer_ref="QL-2", phone_numbers="07700 900456",
                                        ends_on="2026-11-01"),
                   row(customer_ref="QL-1", phone_numbers="07700 900789"))
    assert not result.ok and result.saved == ()
    assert result.problems == (
        (),
        (FieldError("ends_on", "must be after the start date (policy 5.1: say how long)"),),
        (FieldError("customer_ref", "QL-1 is also on line 1"),),
    )
    with services.sessions() as session:
        assert session.scalar(select(func.count(RegisterEntry.id))) == 0


def test_creating_refuses_a_reference_already_on_the_register(services, staff):
    write(services, row())
    result = write(services, row(name="Someone Else"), creating=True)
    assert result.errors == [FieldError(
        "customer_ref", "QL-1 is already on the register; edit that entry instead")]


def test_editing_refuses_a_reference_not_on_the_register(services, staff):
    result = write(services, row(), creating=False)
    assert result.errors == [FieldError("customer_ref", "QL-1 is not on the register")]


def test_a_new_entry_told_by_notice_asks_for_one(services, staff):
    result = write(services, row(), creating=True, notify=True)
    assert result.ok and result.renotify == ("QL-1",)
    assert [(r.action, r.customer_ref) for r in result.saved] == [("created", "QL-1")]


def test_a_changed_arrangement_clears_the_notice_date_and_asks_for_a_new_notice(services,
                                                                                 staff):
    write(services, row(notice_sent_on="2026-11-25"))
    notes = write(services, row(notice_sent_on="2026-11-25", staff_notes="PO box"),
                  notify=True)
    assert notes.renotify == () and notes.saved[0].action == "updated"
    windows = write(services, row(notice_sent_on="2026-11-25", written_only="no",
                                  call_windows="Mon 09:00-10:00"), notify=True)
    assert windows.renotify == ("QL-1",)
    assert windows.saved[0].changes["notice_sent_on"] == ["2026-11-25", ""]
    with services.sessions() as session:
        assert session.scalar(select(RegisterEntry.notice_sent_on)) is None


def test_an_import_leaves_the_notice_date_as_the_file_gives_it(services, staff):
    write(services, row(notice_sent_on="2026-11-25"))
    result = write(services, row(notice_sent_on="2026-11-25", written_only="no",
                                 call_windows="Mon 09:00-10:00"), bulk=True)
    assert result.renotify == () and result.count("updated") == 1
    with services.sessions() as session:
        assert session.scalar(select(RegisterEntry.notice_sent_on)).isoformat() == "2026-11-25"


def test_an_unchanged_entry_writes_nothing_and_leaves_the_cache_complete(services, staff):
    write(services, row())
    services.register.rebuild_cache(TODAY)
    version = services.routing_cache.version()
    result = write(services, row())
    assert result.saved[0].action == "unchanged"
    assert services.routing_cache.version() == version
    assert audit_actions(services) == ["created"]


def test_the_cli_imports_through_the_one_write_path(services, staff, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from service import cli

    monkeypatch.setattr(cli, "services", lambda: services)
    path = tmp_path / "register.csv"
    path.write_text(",".join(row()) + "\n" + ",".join(row().values()) + "\n")
    imported = CliRunner().invoke(cli.main, ["register", "import", str(path), "--by", "ops"])
    assert imported.exit_code == 0, imported.output
    assert "imported: 1 created, 0 updated, 0 unchanged" in imported.output
    path.write_text(",".join(row()) + "\n" + ",".join(row(ends_on="2026-01-01").values()) + "\n")
    refused = CliRunner().invoke(cli.main, ["register", "import", str(path)])
    assert refused.exit_code == 1
    assert "line 2, ends_on: must be after the start date" in refused.output
    with services.sessions() as session:
        assert session.scalar(select(AuditRecord.actor)) == "import:ops"


def test_a_bulk_write_pauses_for_the_fault_tests_only_after_its_commit(services, staff,
                                                                       monkeypatch):
    from usecases import register as register_module

    committed = []

    def pause(seconds):
        with services.sessions() as session:
            committed.append(session.scalar(select(func.count(RegisterEntry.id))))

    monkeypatch.setenv("CALLFLOW_ENV", "test")
    monkeypatch.setenv("CALLFLOW_FAULT_PAUSE_AFTER_COMMIT", "5")
    monkeypatch.setattr(register_module.time, "sleep", pause)
    write(services, row(), bulk=True)
    assert committed == [1]
    write(services, row(customer_ref="QL-2", phone_numbers="07700 900456"))
    assert committed == [1], "a single entry's write updates the cache without a rebuild"


def test_the_review_date_limit_is_the_centres_setting_on_every_write_path(settings, staff):
    from dataclasses import replace

    from usecases.bootstrap import bootstrap

    strict = bootstrap(replace(settings, review_max_months=3))
    try:
        four_months_on = row(review_on="2027-03-25")
        refused = write(strict, four_months_on)
        assert not refused.ok
        assert [p.field for p in refused.errors] == ["review_on"]
        assert write(strict, row(review_on="2027-02-25")).ok  # three months on
    finally:
        strict.close()
