"""Database engines and sessions, for SQLite by default and PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(database_url: str, *, call_path: bool = False) -> Engine:
    """An engine; call_path=True bounds every wait so a caller is never held up for long."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        # hide_parameters: an error's message must not carry the register's or the call log's
        # values (names, numbers, notes) into a log or a traceback.
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 1.0 if call_path else 15.0},
                               hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, object] = {}
    if call_path:
        # connect_args replace the URL's own options (e.g. -csearch_path=...), so keep them.
        options = " ".join(filter(None, (url.query.get("options"), "-c statement_timeout=1000")))
        connect_args = {"connect_timeout": 2, "options": options}
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=2 if call_path else 30,
        connect_args=connect_args,
        hide_parameters=True,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit (handy for read-after-write in views)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
