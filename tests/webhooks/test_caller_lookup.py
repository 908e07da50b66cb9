"""The register check the incoming call makes: what the routing cache said, else the database.

answer_incoming reads the cache in the same Redis round trip as its writes, then hands what it
read to RegisterLookup.answer; these tests give answer each thing the cache can say.
"""

from datetime import date

import pytest

from callflow.register import parse_entry
from store.lookup import UNREADABLE, CacheRead
from store.routing_cache import decode, encode

NUMBER = "+447700900123"
TODAY = date(2026, 12, 1)


@pytest.fixture
def entry(services, staff, clock):
    """A written-only restriction for NUMBER, from 2026 to the end of 2027."""
    fields, errors = parse_entry({
        "customer_ref": "QL-9", "name": "Pat Example", "phone_numbers": "07700 900123",
        "categories": "aggressive_abusive", "reason": "Abuse of staff",
        "decided_by": "manager@example.org", "decided_on": "2025-12-15",
        "starts_on": "2026-01-01", "ends_on": "2027-12-31", "written_only": "yes",
        "evidence": "written: call notes", "no_warning_reason": "threats to staff",
    })
    assert not errors, errors
    saved = services.register.save(fields, "manager@example.org", clock.now, TODAY)
    return saved.entry_id


def cached_value(services, entry_id: int) -> str:
    ready, restriction = services.routing_cache.fetch(NUMBER)
    assert ready and restriction is not None and restriction.entry_id == entry_id
    return encode(restriction)


def test_a_number_the_cache_lists_is_answered_from_the_cache(services, entry):
    services.register.rebuild_cache(TODAY)
    found = services.lookup.answer(NUMBER, CacheRead(True, cached_value(services, entry)), TODAY)
    assert (found.source, found.restriction.entry_id, found.failed) == ("cache", entry, False)


def test_a_number_the_complete_cache_does_not_list_has_no_restriction(services, entry):
    found = services.lookup.answer(NUMBER, CacheRead(True), TODAY)
    assert (found.source, found.restriction) == ("cache", None)


@pytest.mark.parametrize("cached", [CacheRead(False), UNREADABLE],
                         ids=["incomplete", "unreadable"])
def test_a_cache_that_cannot_be_trusted_leaves_the_answer_to_the_database(services, entry,
                                                                          cached):
    found = services.lookup.answer(NUMBER, cached, TODAY)
    assert (found.source, found.restriction.entry_id) == ("database", entry)


def test_a_cached_restriction_that_has_lapsed_does_not_apply(services, entry):
    services.register.rebuild_cache(TODAY)
    value = cached_value(services, entry)
    assert services.lookup.answer(NUMBER, CacheRead(True, value), date(2028, 1, 1)) \
        .restriction is None


def test_looking_up_alone_reads_the_cache_then_answers_the_same_way(services, entry):
    services.register.rebuild_cache(TODAY)
    cached = services.lookup.read_cache(NUMBER)
    assert cached.complete and decode(cached.value).entry_id == entry
    found = services.lookup.lookup("07700 900123", TODAY)
    assert found == services.lookup.answer(NUMBER, cached, TODAY)
    assert found.source == "cache"
