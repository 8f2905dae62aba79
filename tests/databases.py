"""The databases of the tests: PostgreSQL (one server per test session, ``DA_TEST_POSTGRES_URL``
when .ci/run started one, else a throwaway cluster from scripts/postgres.sh; a fresh database per
test), and the registry read from outside, as another process sees it, on either database."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from assistant.storage import database
from assistant.storage.registry import COMPLETE, PENDING
from bench.servers import free_port, postgres_down, postgres_up

SERVER_URL_ENV = "DA_TEST_POSTGRES_URL"


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the session."""
    if os.environ.get(SERVER_URL_ENV):
        yield os.environ[SERVER_URL_ENV]
        return
    # Not under pytest's tmp_path: its folders are private to this user, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="da-postgres-"))
    try:
        yield postgres_up(folder, free_port())
    finally:
        postgres_down(folder)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards (with any connection still open)."""
    name = f"da_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class RegistryState:
    complete_docs: int = 0
    pending_docs: int = 0
    complete_passages: int = 0


def registry_state(location: str | Path) -> RegistryState:
    """Read the registry as another process sees it, with a connection of its own (on SQLite, WAL
    lets the writer go on)."""
    if isinstance(location, Path) and not location.exists():
        return RegistryState()
    engine = create_engine(database.url_for(location), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT status, COUNT(*), COALESCE(SUM(n_passages), 0) FROM documents GROUP BY status"
            )).all()  # fmt: skip
    except DBAPIError:  # schema not created yet
        return RegistryState()
    finally:
        engine.dispose()
    by_status = {status: (docs, passages) for status, docs, passages in rows}
    return RegistryState(
        complete_docs=by_status.get(COMPLETE, (0, 0))[0],
        pending_docs=by_status.get(PENDING, (0, 0))[0],
        complete_passages=by_status.get(COMPLETE, (0, 0))[1],
    )
