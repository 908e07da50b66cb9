"""The dashboard's server-rendered charts, its flags for managers, and repeated contact (4.6)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from console.workspace.charts import nice_ceiling
from store import call_queries as q
from tests.conftest import NOW, TODAY
from tests.workspace import add_call, add_entry, day, text_of

SVG = "{http://www.w3.org/2000/svg}"


def charts_of(html: str) -> dict[str, ElementTree.Element]:
    """Each chart's SVG, parsed, by the id of its figure."""
    found = {}
    for figure_id, svg in re.findall(
            r'<figure class="card chart" id="([\w-]+)">.*?(<svg.*?</svg>)', html, re.S):
        found[figure_id] = ElementTree.fromstring(svg)
    return found


def bar_titles(svg: ElementTree.Element) -> list[str]:
    return [rect.find(f"{SVG}title").text for rect in svg.iter(f"{SVG}rect")]


@pytest.fixture
def fortnight(services, staff):
    """Calls over the last days: decisions, warnings and ends by two agents, a busy number."""
    alex, jo = staff["agent"].id, staff["agent2"].id
    for n in range(3):
        add_call(services, NOW - timedelta(hours=n), "+447700900001", decision="centre",
                 agent_id=alex)
    add_call(services, NOW - timedelta(days=1), "+447700900002", decision="written_only")
    add_call(services, NOW - timedelta(days=1), "+447700900002", decision="outside_window")
    add_call(services, NOW - timedelta(days=2), "+447700900003", decision="centre", agent_id=jo,
             warned=True, ended_by_agent=True)
    add_call(services, NOW - timedelta(days=2), "+447700900004", decision="centre", agent_id=alex,
             warned=True)
    add_call(services, NOW - timedelta(days=30), "+447700900009", decision="closed")


def test_the_dashboard_draws_each_chart_as_svg_with_a_bar_per_value(supervisor, fortnight):
    response = supervisor.get("/workspace/dashboard")
    assert response.status_code == 200
    charts = charts_of(response.get_data(as_text=True))
    assert set(charts) == {"chart-decisions", "chart-marks", "chart-agents", "chart-leaders"}
    assert sorted(bar_titles(charts["chart-decisions"])) == sorted([
        "Tue 1 Dec 2026: Centre (not restricted) 3",
        "Mon 30 Nov 2026: Written only 1", "Mon 30 Nov 2026: Outside window 1",
        "Sun 29 Nov 2026: Centre (not restricted) 2",
    ])
    assert sorted(bar_titles(charts["chart-marks"])) == [
        "Sun 29 Nov 2026: Ended by agent 1", "Sun 29 Nov 2026: Warnings 2"]
    assert sorted(bar_titles(charts["chart-agents"])) == [
        "Agent2: Ended by agent 1", "Agent2: Warnings 1", "Agent: Warnings 1"]
    assert bar_titles(charts["chart-leaders"])[0] == "07700 900001: Not on the register 3"
    # Fourteen days along the x axis, the oldest first.
    labels = [t.text for t in charts["chart-decisions"].iter(f"{SVG}text")
              if t.get("class") == "label"]
    assert labels[0] == "18 Nov" and labels[-1] == "1 Dec" and len(labels) == 14


def test_bars_are_as_tall_as_their_share_of_the_axis(supervisor, fortnight):
    svg = charts_of(supervisor.get("/workspace/dashboard").get_data(as_text=True))[
        "chart-decisions"]
    heights = {rect.find(f"{SVG}title").text: float(rect.get("height"))
               for rect in svg.iter(f"{SVG}rect")}
    assert heights["Tue 1 Dec 2026: Centre (not restricted) 3"] == pytest.approx(
        3 * heights["Mon 30 Nov 2026: Written only 1"], rel=0.01)


def test_an_empty_fortnight_says_so_instead_of_drawing_nothing(supervisor):
    html = supervisor.get("/workspace/dashboard").get_data(as_text=True)
    assert html.count("Nothing to show for this period.") == 4 and "<svg" not in html


def test_the_dashboard_flags_reviews_due_and_notices_unsent(supervisor, services):
    add_entry(services, customer_ref="QL-1", review_on=day(10).isoformat())
    add_entry(services, customer_ref="QL-2", phone_numbers="07700 900456",
              review_on="2027-04-01", notice_sent_on="2026-11-25")
    text = text_of(supervisor.get("/workspace/dashboard"))
    assert "1 review due within 14 days" in text
    assert "1 entry without a notice sent" in text
    reviews = re.search(r"Reviews due within 14 days(.*?)Without a notice", text).group(1)
    assert "QL-1" in reviews and "QL-2" not in reviews


@pytest.mark.parametrize(("value", "ceiling"), [(0, 4), (1, 4), (3, 4), (5, 8), (9, 20),
                                                 (37, 40), (120, 200), (401, 800)])
def test_axis_ceilings_are_round_numbers(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_repeated_contact_lists_numbers_over_either_threshold_on_the_register_or_not(
        supervisor, services):
    add_entry(services, phone_numbers="07700 900123")
    # Six calls in one day is over the daily threshold of five.
    for n in range(6):
        add_call(services, NOW - timedelta(minutes=n), "+447700900123")
    # Sixteen calls over the week, never more than three a day, is over the weekly fifteen.
    for n in range(16):
        add_call(services, NOW - timedelta(days=n % 6, minutes=n), "+447700900456")
    # Five a day is not "more than five".
    for n in range(5):
        add_call(services, NOW - timedelta(minutes=n), "+447700900789")
    # Calls before the week do not count.
    for n in range(9):
        add_call(services, NOW - timedelta(days=8, minutes=n), "+447700900999")
    with services.sessions() as session:
        found = q.repeat_callers(session, TODAY, services.settings.tz, 5, 15)
    assert [(r.number, r.calls, r.over_day, r.over_week, r.customer_ref) for r in found] == [
        ("+447700900456", 16, False, True, ""),
        ("+447700900123", 6, True, False, "QL-1"),
    ]
    page = supervisor.get("/workspace/repeat-callers")
    text = text_of(page)
    assert "more than 5 times on one day, or more than 15 times" in text
    assert "07700 900456 16 over 15/week" in text
    assert "over 5/day" in text and "QL-1" in text and "not on the register" in text
    assert "07700 900789" not in text
    assert "number=%2B447700900456&amp;from=2026-11-25&amp;to=2026-12-01" in page.get_data(
        as_text=True)


def test_repeated_contact_counts_local_days_in_summer_time(services):
    # From 22:15 UTC on 1 July, six quarter-hourly calls all fall on 1 July in UTC, but split
    # three and three either side of midnight in London (BST).
    base = datetime(2026, 7, 1, 22, 15, tzinfo=UTC)
    for n in range(6):
        add_call(services, base + timedelta(minutes=15 * n), "+447700900123")
    with services.sessions() as session:
        assert q.repeat_callers(session, datetime(2026, 7, 3).date(), services.settings.tz,
                                3, 15) == []
        (found,) = q.repeat_callers(session, datetime(2026, 7, 3).date(), services.settings.tz,
                                    2, 15)
    assert found.busiest_day_calls == 3 and found.over_day


def test_the_repeated_contact_chart_shows_national_numbers_whose_labels_fit(supervisor, services):
    add_entry(services, customer_ref="QL-100001", phone_numbers="07700 900123")
    for n in range(4):
        add_call(services, NOW - timedelta(minutes=n), "+447700900123")
    add_call(services, NOW, "+441914980456")
    html = supervisor.get("/workspace/dashboard").get_data(as_text=True)
    figure = re.search(r'<figure class="card chart" id="chart-leaders">.*?</figure>', html, re.S)
    svg = ElementTree.fromstring(re.search(r"<svg.*?</svg>", figure.group(0), re.S).group(0))
    labels = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "label"]
    assert [t.text for t in labels] == ["07700 900123 (QL-100001)", "0191 498 0456"]
    # Right-aligned at x, 11px text at up to 7px a character: every label starts inside the chart.
    assert all(float(t.get("x")) - 7 * len(t.text) >= 0 for t in labels)
