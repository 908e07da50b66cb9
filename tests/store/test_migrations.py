"""The migrations build exactly the schema the models describe, on this test run's database."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.models import Base


def test_the_migrated_database_matches_the_models(services):
    with services.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    if services.engine.dialect.name == "sqlite":
        # The (column, started_at, id) seek indexes are PostgreSQL-only (ddl_if): SQLite's
        # (column, started_at) indexes carry the rowid already.
        differences = [d for d in differences
                       if not (d[0] == "add_index" and d[1].name.endswith("_seek"))]
    assert differences == []
