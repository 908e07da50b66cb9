"""The routing cache is never trusted while a committed register change may be missing from it."""

import io

import pytest
import redis

from callflow.register import parse_entry
from store import routing_cache
from store.register import RegisterStore
from tests.conftest import NOW, TODAY
from usecases.register_csv import import_register

NUMBER = "+447700900123"


def entry(ref="QL-1", number="07700 900123"):
    fields, errors = parse_entry({
        "customer_ref": ref, "name": "Pat Example", "phone_numbers": number,
        "categories": "aggressive_abusive", "reason": "Abuse of staff", "written_only": "yes",
        "decided_by": "manager@example.org", "decided_on": "2026-11-20",
        "starts_on": "2026-11-25", "ends_on": "2027-05-31",
        "evidence": "written: letter of 3 November about calls to staff",
        "no_warning_reason": "threats of violence to staff (policy 4.3)",
    })
    assert not errors
    return fields


@pytest.fixture
def built(services, staff):
    services.register.save(entry(), "manager@example.org", NOW, TODAY)
    services.register.rebuild_cache(TODAY)
    assert services.routing_cache.version() is not None
    return services


def source(services, number=NUMBER):
    found = services.lookup.lookup(number, TODAY)
    return found.source, found.restriction is not None


def test_a_writer_about_to_commit_makes_the_call_path_read_the_database(built):
    cache = built.register.cache
    token = cache.hold()
    assert source(built) == ("database", True)
    assert cache.release(token, [NUMBER], None) is True
    assert source(built) == ("cache", False)


def test_the_cache_is_complete_again_only_when_the_last_pending_writer_releases(built):
    cache = built.register.cache
    first, second = cache.hold(), cache.hold()
    assert cache.release(first, [], None) is False
    assert built.routing_cache.version() is None
    assert cache.release(second, [], None) is True
    assert built.routing_cache.version() is not None


def test_a_rebuild_that_read_the_register_before_a_write_is_not_swapped_in(built):
    cache = built.register.cache
    started = cache.start_rebuild()
    token = cache.hold()
    cache.release(token, [], None)
    cache.rebuild([], 99, started)
    assert cache.last_swapped is False
    assert source(built) == ("cache", True), "the live hash kept the entry"


def test_a_rebuild_waits_for_a_writer_still_between_hold_and_release(built):
    cache = built.register.cache
    token = cache.hold()
    assert built.register.sync_cache(TODAY) is False
    assert built.routing_cache.version() is None
    cache.release(token, [], None)
    assert built.routing_cache.version() is not None


def test_a_writer_killed_before_release_is_covered_by_the_next_sync_once_presumed_dead(
    built, monkeypatch
):
    cache = built.register.cache
    cache.hold()  # and the process dies after its commit:
    with built.register.sessions.begin() as session:
        RegisterStore(session).save(entry("QL-2", "07700 900456"), "import", NOW, TODAY)
    assert source(built, "+447700900456") == ("database", True)
    assert built.register.sync_cache(TODAY) is False, "a live writer might still commit"
    monkeypatch.setattr(routing_cache, "STALE_AFTER_MS", 0)
    assert built.register.sync_cache(TODAY) is True
    assert source(built, "+447700900456") == ("cache", True)


def test_saving_and_lifting_leave_the_cache_complete_and_current(built):
    built.register.save(entry("QL-2", "07700 900456"), "manager@example.org", NOW, TODAY)
    assert source(built, "+447700900456") == ("cache", True)
    built.register.lift("QL-2", "manager@example.org", "Behaviour improved", NOW)
    assert source(built, "+447700900456") == ("cache", False)
    assert built.redis.zcard(routing_cache.PENDING_KEY) == 0


def test_an_import_whose_rebuild_fails_leaves_the_cache_incomplete_not_stale(built,
                                                                            monkeypatch):
    def broken(*args, **kwargs):
        raise redis.ConnectionError("Redis went away mid-rebuild")

    monkeypatch.setattr(built.register.cache, "rebuild", broken)
    csv_text = ("customer_ref,name,phone_numbers,categories,reason,written_only,decided_by,"
                "decided_on,starts_on,ends_on,evidence,no_warning_reason\n"
                "QL-2,Pat Two,07700 900456,aggressive_abusive,Abuse,yes,manager@example.org,"
                "2026-11-20,2026-11-25,2027-05-31,written: call notes,threats to staff\n")
    import_register(io.StringIO(csv_text), built.register, "import:test", NOW, TODAY)
    assert built.routing_cache.version() is None
    assert source(built, "+447700900456") == ("database", True)
