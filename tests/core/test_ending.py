"""Ending a call as policy 4.5 and 4.3 require: the reasons and plan_end."""

from __future__ import annotations

import pytest

from callflow.ending import (
    END_REASONS,
    INCIDENT_MENU,
    WRAP_UP_REASONS,
    EndPlan,
    EndReason,
    EndRefusal,
    EndRefused,
    plan_end,
)
from callflow.register import CATEGORY_LABELS, Category

THREAT = EndReason.THREAT_OR_VIOLENCE
SWEARING = EndReason.AGGRESSIVE_ABUSIVE


def test_the_reasons_are_section_3s_categories_and_threats():
    assert [r.value for r in END_REASONS] == [*(c.value for c in Category), "threat_or_violence"]
    assert [r.value for r in WRAP_UP_REASONS] == [c.value for c in Category]
    assert INCIDENT_MENU[0] is THREAT and set(INCIDENT_MENU) == set(END_REASONS)


def test_each_reason_reads_with_its_policy_paragraph():
    assert THREAT.label == "Threat or violence (4.3)"
    for category in Category:
        assert EndReason(category.value).label == CATEGORY_LABELS[category]


def test_a_warned_caller_hears_the_closing_statement():
    assert plan_end(SWEARING, warned=True) == EndPlan(
        reason=SWEARING, closing_statement=True, opens_incident=False, wrap_up_owed=False)


def test_threats_end_at_once_without_a_warning_and_open_an_incident():
    assert plan_end(THREAT, warned=False) == EndPlan(
        reason=THREAT, closing_statement=False, opens_incident=True, wrap_up_owed=False)


@pytest.mark.parametrize("reason", [None, *WRAP_UP_REASONS])
def test_any_other_end_needs_a_warning_first(reason):
    with pytest.raises(EndRefused) as refused:
        plan_end(reason, warned=False)
    assert refused.value.refusal is EndRefusal.NOT_WARNED
    assert str(refused.value) == "warn before ending"


def test_one_click_owes_the_reason_as_wrap_up():
    plan = plan_end(None, warned=True)
    assert plan.wrap_up_owed and plan.closing_statement and plan.reason is None


def test_one_click_needs_someone_on_the_call_to_give_the_reason_later():
    with pytest.raises(EndRefused) as refused:
        plan_end(None, warned=True, staff_on_call=False)
    assert refused.value.refusal is EndRefusal.REASON_NEEDED_NOW
    assert plan_end(SWEARING, warned=True, staff_on_call=False).wrap_up_owed is False


@pytest.mark.parametrize("reason", [None, *END_REASONS])
def test_an_ended_call_cannot_be_ended_again(reason):
    with pytest.raises(EndRefused) as refused:
        plan_end(reason, warned=True, ended=True)
    assert refused.value.refusal is EndRefusal.ALREADY_ENDED
