"""The one database layer under the registry and the transcripts: SQLAlchemy engines and Alembic
migrations.

SQLite files in the data folder are the embedded default; ``DA_DATABASE_URL`` (for example
``postgresql+psycopg://user@host/db``) puts both stores in one server database that several app
replicas share. Each store owns a branch of the migrations (``assistant/storage/migrations``)
and its own version table, so both can live in one database or in two files.

Atomic writes go through ``writing``. On SQLite it starts ``BEGIN IMMEDIATE``: the write lock is
taken before the first read, so two processes cannot both read a row and then race to write it
(a deferred transaction that later writes fails at once instead of waiting). On PostgreSQL a
transaction at the default isolation is enough: row locks do the same. ``reading(consistent=True)``
gives one snapshot for several queries (WAL on SQLite, REPEATABLE READ on PostgreSQL).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from filelock import FileLock
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from assistant.core.errors import UserError

MIGRATIONS = Path(__file__).with_name("migrations")
# Written into PRAGMA user_version once a SQLite file is under Alembic: releases from before
# Alembic refuse the file as "written by a newer version" instead of writing rows without the
# columns added since.
HANDED_TO_ALEMBIC = 1000
_WRITE = "da_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
# Alembic keeps the running migration in module state: one migration at a time in a process
# (other processes wait on the database's lock instead).
_migration_lock = threading.Lock()


class NewerDatabaseError(UserError, RuntimeError):
    """The database was written by a newer version of the assistant; opening it could lose data."""

    status = 409


class DatabaseUnavailableError(UserError, RuntimeError):
    """The database server did not accept a connection; the message names its address, never its password."""

    status = 503
    retry_after_s = 10


@contextmanager
def _connection(engine: Engine) -> Iterator[Connection]:
    try:
        connection = engine.connect()
    except OperationalError as error:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "no answer"
        raise DatabaseUnavailableError(f"cannot reach the database at {where}: {reason}") from error
    with connection:
        yield connection


def url_for(location: str | Path) -> str:
    """A database URL: ``location`` as given if it is a URL, else a SQLite file at that path."""
    if isinstance(location, Path) or "://" not in location:
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return location


def engine_for(location: str | Path) -> Engine:
    """A new engine (and connection pool) for ``location``; its store disposes of it when it closes."""
    return _create(url_for(location))


def _create(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    # Pooled (a store makes many short calls: a fresh connection each would cost more than the
    # query); the store's close() disposes of the pool and closes the file.
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One atomic write transaction: committed when the block ends, rolled back if it raises."""
    with _connection(engine) as connection:
        connection.execution_options(**{_WRITE: True})
        with connection.begin():
            yield connection


@contextmanager
def reading(engine: Engine, consistent: bool = False) -> Iterator[Connection]:
    """A read transaction; ``consistent``: every query in it sees one snapshot of the database."""
    with _connection(engine) as connection:
        if consistent and engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Held by one process at a time among all that share the database (app replicas on other hosts,
    a ``da ingest`` beside ``da app``), until the block ends or the holder dies.

    PostgreSQL: a session advisory lock, on a connection of its own in autocommit (no transaction
    stays open while it is held); the server releases it when the connection drops. SQLite: an OS
    file lock beside the database file (``filelock``), released by the OS with the process."""
    if engine.dialect.name == "postgresql":
        with _connection(engine) as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": name})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
        return
    with FileLock(f"{engine.url.database}.{name}.lock"):
        yield


def upsert(connection: Connection, table: Table, values: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Insert a row, or on a clash of ``keys`` replace its other columns (SQLite's INSERT OR REPLACE
    is not PostgreSQL's; both dialects spell ON CONFLICT alike)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    connection.execute(statement.on_conflict_do_update(
        index_elements=list(keys), set_={k: v for k, v in values.items() if k not in keys}
    ))  # fmt: skip


def migrate(engine: Engine, branch: str, legacy: Callable[[Connection], str | None]) -> None:
    """Bring ``branch``'s tables up to the newest revision in place, losing nothing.

    A SQLite file from before Alembic kept its layout in ``PRAGMA user_version``: ``legacy`` names
    the revision that layout matches (None: a new, empty database), which is recorded before the
    upgrade runs the revisions after it. A database whose revision this code does not know was
    written by a newer version and is refused. A database already at the newest revision is only
    read (every store opens through here, and Alembic's machinery costs about 10 ms an open).
    """
    with reading(engine) as connection:
        if _current(connection, branch) == _heads(branch):
            return
    with _migration_lock, writing(engine) as connection:
        if connection.dialect.name == "postgresql":  # replicas starting together migrate one at a time
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:branch))"), {"branch": branch})
        current = _current(connection, branch)
        if current and not current <= _known():
            raise NewerDatabaseError(
                f"the {branch} database was written by a newer version (revision {', '.join(sorted(current))}); "
                "upgrade Debate Assistant to open it"
            )
        config = _config(branch)
        config.attributes["connection"] = connection
        if not current:
            start = legacy(connection)
            if start is not None:
                command.stamp(config, start)
        try:
            command.upgrade(config, f"{branch}@head")
        except CommandError as error:  # pragma: no cover - a broken install, not user data
            raise RuntimeError(f"cannot migrate the {branch} database: {error}") from error
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(f"PRAGMA user_version = {HANDED_TO_ALEMBIC}")


def _config(branch: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["version_table"] = f"{branch}_version"
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config("registry"))


@functools.cache
def _heads(branch: str) -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().get_revisions(f"{branch}@head") if script is not None)


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def _current(connection: Connection, branch: str) -> frozenset[str]:
    """The revisions recorded in the branch's version table (none if it has no table yet)."""
    context = MigrationContext.configure(connection, opts={"version_table": f"{branch}_version"})
    return frozenset(context.get_current_heads())


def sqlite_layout(connection: Connection, table: str, revisions: Sequence[str], kind: str) -> str | None:
    """The revision a pre-Alembic SQLite file matches: ``revisions[user_version]``, or None for a
    database without ``table`` (nothing to carry over). A version past ``revisions`` is newer."""
    if connection.dialect.name != "sqlite" or not inspect(connection).has_table(table):
        return None
    version = connection.execute(text("PRAGMA user_version")).scalar_one()
    if version >= len(revisions):
        raise NewerDatabaseError(
            f"the {kind} were written by a newer version (schema {version}, this code knows {len(revisions) - 1})"
        )
    return revisions[version]
