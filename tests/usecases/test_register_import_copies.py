"""A large import, on PostgreSQL, loads each chunk on a thread while it reads the next: still
every problem at once, and all or nothing; and the cache rebuild that follows it streams."""

import psycopg
import pytest
import redis
from sqlalchemy import func, select

from store.models import AuditRecord, RegisterEntry
from store.register import BackgroundCopies
from store.routing_cache import CACHE_KEY, READY_FIELD
from tests.conftest import NOW, TODAY
from tests.usecases.test_register_bulk import do_import, number, row
from usecases import register_write
from usecases.register_csv import ImportRefused


def test_a_problem_in_the_last_chunk_undoes_the_chunks_already_saved(services, staff,
                                                                    monkeypatch):
    services.register.rebuild_cache(TODAY)
    cached_version = services.routing_cache.version()
    monkeypatch.setattr(register_write, "CHUNK", 100)
    saves = []
    save = register_write.save_drafts
    monkeypatch.setattr(register_write, "save_drafts",
                        lambda *args: saves.append(len(args[1])) or save(*args))
    rows = [row(i) for i in range(1000)]
    rows[998] = row(998, ends_on="soon")
    rows[999] = row(999, phone_numbers=number(0))
    with pytest.raises(ImportRefused) as refused:
        do_import(services, rows)

    assert [(e.line, e.column, e.message) for e in refused.value.errors] == [
        (1000, "ends_on", "'soon' is not a date (use 2026-12-01 or 01/12/2026)"),
        (1001, "phone_numbers", "+447700900000 already belongs to active entry QL-00000"),
    ]
    assert saves == [100] * 9, "the nine chunks before the last were saved, then undone"
    with services.sessions() as session:  # all or nothing
        assert session.scalar(select(func.count()).select_from(RegisterEntry)) == 0
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 0
    # A refused write never held the cache: still complete, at the version it had.
    assert redis.Redis.from_url(services.redis_url).hexists(CACHE_KEY, READY_FIELD)
    assert services.routing_cache.version() == cached_version


def test_a_load_that_fails_on_its_thread_undoes_the_whole_import(services, staff, monkeypatch):
    if services.engine.dialect.name != "postgresql":
        pytest.skip("the loads run on a thread of their own on PostgreSQL only")
    monkeypatch.setattr(register_write, "CHUNK", 100)
    save = register_write.save_drafts
    saves = []

    def another_writer_takes_a_reference_first(*args):
        saves.append(len(args[1]))
        if len(saves) == 2:  # after the chunk's lookup, before its load: a concurrent writer
            assert services.register.write(
                [row(150, phone_numbers="07700 900999")], "manager@example.org", NOW, TODAY).ok
        return save(*args)

    monkeypatch.setattr(register_write, "save_drafts", another_writer_takes_a_reference_first)
    with pytest.raises(psycopg.errors.UniqueViolation):
        do_import(services, [row(i) for i in range(300)])

    # The import's first two chunks, the other writer's entry; the error, raised when the
    # third chunk came to be judged, stopped the import there.
    assert saves == [100, 100, 1]
    with services.sessions() as session:  # only the other writer's entry
        assert session.scalars(select(RegisterEntry.customer_ref)).all() == ["QL-00150"]
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 1


def test_background_copies_run_in_order_and_settle_raises_the_first_error():
    copies = BackgroundCopies()
    done: list[int] = []

    def fail(message: str):
        def copy() -> None:
            raise ValueError(message)
        return copy

    copies.submit(lambda: done.append(1))
    copies.submit(fail("first"))
    copies.submit(lambda: done.append(3))
    copies.submit(fail("second"))
    with pytest.raises(ValueError, match="first"):
        copies.settle()
    assert done == [1, 3]
    copies.settle()  # nothing is left to wait for
    copies.close()


def test_the_rebuild_gives_a_number_to_its_own_entry_before_a_representative(services, staff):
    # QL-00001's advocate is on 07700 900456; that number later became QL-00002's own (a rule
    # refuses only a representative's number that is already an entry's). A lapsed entry's
    # number leaves the representative's in the cache.
    reps = "Jo Bloggs | advocate | 07700 900456 | covered; Sam | son | 07700 900789 | covered"
    do_import(services, [row(1, representatives=reps, written_only="no",
                             call_windows="Mon 09:00-10:00")])
    do_import(services, [row(2, phone_numbers="07700 900456"),
                         row(3, phone_numbers="07700 900789", starts_on="2026-01-05",
                             decided_on="2026-01-05", ends_on="2026-02-01",
                             review_on="2026-01-20")])
    services.register.rebuild_cache(TODAY)

    own = services.register.cache.fetch("+447700900456")[1]
    representative = services.register.cache.fetch("+447700900789")[1]
    with services.sessions() as session:
        ids = dict(session.execute(select(RegisterEntry.customer_ref, RegisterEntry.id)).all())
    assert (own.entry_id, own.representative) == (ids["QL-00002"], False)
    assert (representative.entry_id, representative.representative) == (ids["QL-00001"], True)
