"""The call log's queries: every filter, local dates, and keyset pages that never skip or repeat."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select

from callflow.register import parse_entry
from store import call_queries as q
from store.models import Call
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry, entry_form


@pytest.fixture
def tz(services):
    return services.settings.tz


def page_ids(services, f, tz, **kwargs):
    with services.sessions() as session:
        page = q.call_page(session, f, tz, **kwargs)
    return page, [row.id for row in page.rows]


def all_ids(services, f, tz):
    with services.sessions() as session:
        return [row.id for row in q.iter_calls(session, f, tz, batch=7)]


def test_pages_walk_the_whole_log_newest_first_without_gaps_or_repeats(services, tz):
    # Ties on started_at are broken by id, so calls in the same instant are neither lost nor
    # shown twice across a page boundary.
    for n in range(23):
        add_call(services, NOW - timedelta(minutes=n // 3))
    with services.sessions() as session:
        expected = [i for (i,) in session.execute(
            select(Call.id).order_by(Call.started_at.desc(), Call.id.desc()))]
    seen, after, pages = [], None, []
    while True:
        page, ids = page_ids(services, q.CallFilter(), tz, after=after, size=5)
        pages.append((page, ids))
        seen += ids
        if page.older is None:
            break
        after = page.older
    assert seen == expected
    assert [len(ids) for _, ids in pages] == [5, 5, 5, 5, 3]
    assert pages[0][0].newer is None and pages[1][0].newer is not None

    # Walking back up with `before` shows the same pages.
    back, ids = page_ids(services, q.CallFilter(), tz, before=pages[-1][0].newer, size=5)
    assert ids == pages[-2][1]
    top, ids = page_ids(services, q.CallFilter(), tz, before=pages[1][0].newer, size=5)
    assert ids == pages[0][1] and top.newer is None and top.older is not None


def test_the_export_iterator_reads_every_match_in_keyset_batches(services, tz):
    for n in range(20):
        add_call(services, NOW - timedelta(seconds=n // 2))
    ids = all_ids(services, q.CallFilter(), tz)
    assert len(ids) == len(set(ids)) == 20


def test_a_cursor_survives_its_text_form_and_refuses_anything_else():
    cursor = q.Cursor(datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC), 42)
    assert q.Cursor.parse(str(cursor)) == cursor
    for bad in ("", "abc", "1.2.3", "12", "x.4"):
        with pytest.raises(q.CursorInvalid):
            q.Cursor.parse(bad)


def test_local_dates_are_whole_days_in_london_time_across_the_clock_change(services, tz):
    # 23:30 UTC on 1 July is 00:30 BST on 2 July; 23:30 UTC on 1 December is still 1 December.
    summer = add_call(services, datetime(2026, 7, 1, 23, 30, tzinfo=UTC))
    winter = add_call(services, datetime(2026, 12, 1, 23, 30, tzinfo=UTC))

    def sids(first, last):
        with services.sessions() as session:
            f = q.CallFilter(date_from=first, date_to=last)
            return {row.call_sid for row in q.call_page(session, f, tz).rows}

    assert sids(date(2026, 7, 2), date(2026, 7, 2)) == {summer}
    assert sids(date(2026, 7, 1), date(2026, 7, 1)) == set()
    assert sids(date(2026, 12, 1), date(2026, 12, 1)) == {winter}
    assert sids(date(2026, 7, 1), None) == {summer, winter}


@pytest.fixture
def varied_calls(services, staff):
    """One call of each kind a supervisor filters by, named for the test to pick out."""
    alex, jo = staff["agent"].id, staff["agent2"].id
    t = NOW
    return {
        "centre": add_call(services, t, "+447700900001", decision="centre", agent_id=alex),
        "written": add_call(services, t - timedelta(minutes=1), "+447700900002",
                            decision="written_only"),
        "outside": add_call(services, t - timedelta(minutes=2), "+447700900002",
                            decision="outside_window"),
        "designated": add_call(services, t - timedelta(minutes=3), "+447700900003",
                               decision="designated_contact", agent_id=jo),
        "closed_withheld": add_call(services, t - timedelta(minutes=4), None, decision="closed"),
        "voicemail": add_call(services, t - timedelta(minutes=5), "+447700900004",
                              decision="centre", voicemail=True),
        "emergency": add_call(services, t - timedelta(minutes=6), "+447700900004",
                              decision="closed", emergency=True),
        "failed": add_call(services, t - timedelta(minutes=7), "+447700900005",
                           decision="register_check_failed", lookup_failed=True),
        "warned": add_call(services, t - timedelta(minutes=8), "+447700900006",
                           decision="centre", agent_id=alex, warned=True),
        "ended": add_call(services, t - timedelta(minutes=9), "+447700900006",
                          decision="centre", agent_id=jo, warned=True, ended_by_agent=True,
                          incident=True),
    }


@pytest.mark.parametrize(("make_filter", "expected"), [
    (lambda s: q.CallFilter(decision="written_only"), {"written"}),
    (lambda s: q.CallFilter(decision="outside_window"), {"outside"}),
    (lambda s: q.CallFilter(decision="designated_contact"), {"designated"}),
    (lambda s: q.CallFilter(decision="closed"), {"closed_withheld", "emergency"}),
    (lambda s: q.CallFilter(decision="connected"), {"centre", "designated", "warned", "ended"}),
    (lambda s: q.CallFilter(decision="voicemail"), {"voicemail"}),
    (lambda s: q.CallFilter(decision="emergency"), {"emergency"}),
    (lambda s: q.CallFilter(decision="withheld"), {"closed_withheld"}),
    (lambda s: q.CallFilter(decision="register_check_failed"), {"failed"}),
    (lambda s: q.CallFilter(marks=frozenset({"warned"})), {"warned", "ended"}),
    (lambda s: q.CallFilter(marks=frozenset({"ended_by_agent"})), {"ended"}),
    (lambda s: q.CallFilter(marks=frozenset({"incident"})), {"ended"}),
    (lambda s: q.CallFilter(agent_id=s["agent"].id), {"centre", "warned"}),
    (lambda s: q.CallFilter(agent_id=s["agent2"].id, marks=frozenset({"warned"})), {"ended"}),
    (lambda s: q.CallFilter(number="+447700900002"), {"written", "outside"}),
    (lambda s: q.CallFilter(number="+447700900002", decision="written_only"), {"written"}),
])
def test_each_filter_narrows_the_log_to_the_calls_it_names(services, staff, varied_calls, tz,
                                                          make_filter, expected):
    with services.sessions() as session:
        rows = q.call_page(session, make_filter(staff), tz).rows
    by_sid = {sid: name for name, sid in varied_calls.items()}
    assert {by_sid[row.call_sid] for row in rows} == expected


def test_a_person_of_interest_means_their_entry_and_every_number_it_has_held(services, staff, tz):
    add_entry(services, customer_ref="QL-9", phone_numbers="07700 900777")
    fields, _ = parse_entry(entry_form(customer_ref="QL-9", phone_numbers="07700 900888"))
    services.register.save(fields, "manager@example.org", NOW, TODAY)
    with services.sessions() as session:
        entry_id, numbers = q.person_scope(session, "QL-9")
    assert numbers == ("+447700900888", "+447700900777")
    old = add_call(services, NOW - timedelta(days=3), "+447700900777")
    new = add_call(services, NOW - timedelta(days=1), "+447700900888", entry_id=entry_id)
    tagged = add_call(services, NOW, "+447700900999", entry_id=entry_id)
    add_call(services, NOW, "+447700900111")
    with services.sessions() as session:
        f = q.with_person(session, q.CallFilter(), "QL-9")
        rows = q.call_page(session, f, tz).rows
        assert q.with_person(session, q.CallFilter(), "QL-404") is None
    assert [r.call_sid for r in rows] == [tagged, new, old]
    assert rows[0].customer_ref == "QL-9"


def test_rows_carry_the_agents_name_and_the_entry_reference(services, staff, tz):
    result = add_entry(services)
    add_call(services, NOW, decision="written_only", entry_id=result.entry_id,
             agent_id=staff["agent"].id, warned=True)
    with services.sessions() as session:
        (row,) = q.call_page(session, q.CallFilter(), tz).rows
    assert (row.agent_name, row.customer_ref, row.flags) == ("Agent", "QL-1", ["warned"])


def test_no_page_counts_or_skips_rows(services, varied_calls, tz):
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    engine = services.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with services.sessions() as session:
            first = q.call_page(session, q.CallFilter(), tz, size=3)
            q.call_page(session, q.CallFilter(marks=frozenset({"warned"})), tz, after=first.older)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    reads = [(s, p) for s, p in statements if "FROM calls" in s]
    assert reads
    for statement, parameters in reads:
        assert "count(" not in statement.lower()
        # SQLite spells every LIMIT as "LIMIT ? OFFSET ?"; the offset must always be nought.
        if "OFFSET" in statement:
            assert parameters[-1] == 0


PLANNED = {
    "none": q.CallFilter(),
    "dates": q.CallFilter(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30)),
    "number": q.CallFilter(number="+447700900123"),
    "decision": q.CallFilter(decision="written_only"),
    "connected": q.CallFilter(decision="connected"),
    "voicemail": q.CallFilter(decision="voicemail"),
    "emergency": q.CallFilter(decision="emergency"),
    "withheld": q.CallFilter(decision="withheld"),
    "register_check_failed": q.CallFilter(decision="register_check_failed"),
    "agent": q.CallFilter(agent_id=3),
    "warned": q.CallFilter(marks=frozenset({"warned"})),
    "ended_by_agent": q.CallFilter(marks=frozenset({"ended_by_agent"})),
    "incident": q.CallFilter(marks=frozenset({"incident"})),
}


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_every_filter_seeks_an_index_in_log_order_rather_than_sorting_the_table(services, tz,
                                                                               name):
    if services.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plan does not depend on table statistics; see bench/ for PG")
    cursor = q.Cursor(NOW, 10)
    where = q._conditions(PLANNED[name], tz) + [q._older_than(cursor)]
    statement = (select(*q._COLUMNS).where(*where)
                 .order_by(Call.started_at.desc(), Call.id.desc()).limit(51))
    sql = str(statement.compile(services.engine, compile_kwargs={
        "literal_binds": True, "render_postcompile": True}))
    with services.engine.connect() as connection:
        plan = " | ".join(r[-1] for r in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert re.search(r"SEARCH calls USING INDEX ix_calls_\w+", plan), plan
    assert "TEMP B-TREE" not in plan, plan
