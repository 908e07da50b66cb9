"""Call limits (policy 4.6) through the register's one write path, the CSV, the routing cache
and the call tally: a real database and a real Redis."""

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callflow.call_limits import CallLimits, LimitPeriod
from callflow.register import parse_entry
from store.call_limits import CallTally
from store.lookup import RegisterLookup
from store.models import AuditRecord, RegisterEntry
from store.routing_cache import RoutingCache
from tests.conftest import NOW, TODAY
from tests.usecases.test_register_csv import base_row, csv_text, do_import, export_text


def limited_row(**changes):
    return base_row(**{"written_only": "no", "call_frequency": "1 a day",
                       "max_call_minutes": "15", **changes})


def test_limits_are_saved_audited_and_exported_losslessly(services, staff):
    do_import(services, csv_text(limited_row()))
    with services.sessions() as session:
        entry = session.scalar(select(RegisterEntry))
        assert (entry.max_calls, entry.max_calls_per, entry.max_call_minutes) == (1, "day", 15)
    first = export_text(services)
    cells = next(csv.DictReader(io.StringIO(first)))
    assert (cells["call_frequency"], cells["max_call_minutes"]) == ("1 a day", "15")
    do_import(services, first)
    assert export_text(services) == first


def test_changing_a_limit_is_audited_with_before_and_after(services, staff):
    do_import(services, csv_text(limited_row()))
    fields, errors = parse_entry(limited_row(call_frequency="2 a week", max_call_minutes=""))
    assert errors == []
    services.register.save(fields, "manager@example.org", NOW + timedelta(hours=1), TODAY)
    with services.sessions() as session:
        last = session.scalars(select(AuditRecord).order_by(AuditRecord.id.desc())).first()
    assert last.actor == "manager@example.org"
    assert last.changes["call_frequency"] == ["1 a day", "2 a week"]
    assert last.changes["max_call_minutes"] == ["15", ""]


def test_the_routing_cache_carries_the_limits_so_the_call_path_needs_no_database(services,
                                                                                 staff):
    do_import(services, csv_text(limited_row()))
    services.register.rebuild_cache(TODAY)
    ready, restriction = RoutingCache(services.redis).fetch("+447700900123")
    assert ready and restriction.call_limits == CallLimits(1, LimitPeriod.DAY, 15)
    found = RegisterLookup(RoutingCache(services.redis), services.sessions).lookup(
        "+447700900123", TODAY)
    assert found.source == "cache"
    assert found.restriction.call_limits == CallLimits(1, LimitPeriod.DAY, 15)


def test_a_limit_refused_with_written_only_says_where(services, staff):
    _fields, errors = parse_entry(base_row(call_frequency="1 a day"))
    assert errors == []
    result = services.register.write([_fields], "manager@example.org", NOW, TODAY)
    assert [(e.field, e.message) for e in result.errors] == [
        ("call_frequency", "cannot be set when contact is written only")]


def test_the_tally_counts_each_call_once_and_reads_back_recent_calls(services):
    tally = CallTally(services.redis)
    answered = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert tally.count(7, "CA" + "1" * 32, answered) is True
    assert tally.count(7, "CA" + "1" * 32, answered) is False, "a retried job counts nothing"
    tally.count(7, "CA" + "2" * 32, answered + timedelta(hours=1))
    assert tally.recent(7, answered + timedelta(minutes=1)) == (answered + timedelta(hours=1),)
    assert tally.recent(7, answered - timedelta(days=1)) == (
        answered, answered + timedelta(hours=1))
    assert tally.recent(8, answered - timedelta(days=1)) == ()
