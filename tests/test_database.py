"""The database layer (``assistant.storage.database``) on both databases it supports: the default
SQLite files and PostgreSQL (``DA_DATABASE_URL``). Every test here runs on each."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from assistant.core.debate_record import COMPLETE, RUNNING, STOPPED, DebateTurn
from assistant.core.passage import Passage
from assistant.core.personas import ADVOCATE, SKEPTIC
from assistant.core.settings import Settings
from assistant.storage import database as storage_db
from assistant.storage import registry, transcripts
from assistant.storage.registry import DocumentRecord, Registry, now_iso
from assistant.storage.transcripts import TranscriptStore
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("database")
REPO = Path(__file__).resolve().parents[1]


def _record(n: int, **fields: object) -> tuple[DocumentRecord, str, list[Passage]]:
    doc_id = f"doc{n:04d}"
    body = f"Document {n} says one thing. It then says another."
    record = DocumentRecord(
        id=doc_id, hash=f"hash{n}", source=f"/articles/{n}.txt", title=f"Title {n}", author=None, date=None, url=None,
        publisher=None, kind="text", n_passages=1, status="pending", embedding_model="m", added_at=now_iso(), **fields,
    )  # fmt: skip
    return record, body, [Passage(id=f"{doc_id}:0", doc_id=doc_id, index=0, text=body, start=0, end=len(body))]


def test_the_settings_choose_the_database(settings: Settings, database: str) -> None:
    if database == "sqlite":
        assert settings.database_url is None
        assert settings.registry_database == settings.data_dir / "registry.sqlite3"
    else:
        assert settings.registry_database == settings.transcripts_database == settings.database_url.get_secret_value()
    with pytest.raises(ValidationError, match="database_url must be a sqlite:/// or postgresql"):
        Settings(database_url="mysql://root@127.0.0.1/db")
    shown = Settings(database_url="postgresql+psycopg://student:pw-in-url@db/school")
    assert "pw-in-url" not in repr(shown) and shown.registry_database.endswith(":pw-in-url@db/school")


@pytest.mark.parametrize(("store", "branch"), [(Registry, registry), (TranscriptStore, transcripts)])
def test_the_migrations_build_exactly_the_tables_the_queries_use(settings: Settings, store, branch) -> None:
    """Alembic's own comparison of the migrated database with the tables declared for the queries:
    a column added to one and not the other fails here, not in a user's upgrade."""
    location = settings.registry_database if store is Registry else settings.transcripts_database
    store(location).close()
    with storage_db.engine_for(location).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, branch.METADATA) if "_version" not in str(d)]
    assert differences == []


def test_a_write_that_fails_half_way_leaves_nothing(settings: Settings) -> None:
    """A document is written with all its passages or not at all: a passage id that clashes
    (the second passage) rolls back the document row and the first passage too."""
    store = Registry(settings.registry_database)
    record, body, passages = _record(1)
    twice = [passages[0], passages[0]]
    with pytest.raises(IntegrityError):
        store.begin(record, body, twice)
    assert store.get(record.id) is None and store.passages(status=None) == []
    store.begin(record, body, passages)
    assert store.get(record.id).status == "pending" and len(store.passages(status=None)) == 1
    store.close()


def test_concurrent_writers_lose_no_update(settings: Settings) -> None:
    """Four writers, each with its own connection, change statuses at once: every change bumps the
    generation counter exactly once (a read-then-write race would lose some)."""
    store = Registry(settings.registry_database)
    for n in range(4):
        store.begin(*_record(n))
    start = store.generation()
    errors: list[BaseException] = []

    def flip(n: int) -> None:
        try:
            for i in range(15):
                store.set_status(f"doc{n:04d}", COMPLETE if i % 2 else "pending")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=flip, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and store.generation() == start + 60
    store.close()


def test_replicas_opening_a_new_database_together_migrate_it_once(settings: Settings) -> None:
    """Four app processes starting at the same moment on an empty database, and four threads of
    one: one migrates, the others wait for it and find the tables made (no "table exists" error,
    one version row)."""
    opening = (
        "import sys; from assistant.storage.registry import Registry; from assistant.storage.transcripts import "
        "TranscriptStore; Registry(sys.argv[1]); TranscriptStore(sys.argv[2])"
    )
    where = [str(settings.registry_database), str(settings.transcripts_database)]
    processes = [subprocess.Popen([sys.executable, "-c", opening, *where], cwd=REPO, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]  # fmt: skip
    errors: list[BaseException] = []

    def open_both() -> None:
        try:
            Registry(settings.registry_database)
            TranscriptStore(settings.transcripts_database)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_both) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [process.stderr.read() for process in processes if process.wait(timeout=120) != 0]
    assert errors == [] and failed == []
    with storage_db.engine_for(settings.registry_database).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM registry_version")).scalars().all() == ["registry_0003"]


def test_a_database_written_by_a_newer_version_is_refused(settings: Settings) -> None:
    Registry(settings.registry_database).close()
    with storage_db.engine_for(settings.registry_database).begin() as connection:
        connection.execute(text("UPDATE registry_version SET version_num = 'registry_9999'"))
    with pytest.raises(storage_db.NewerDatabaseError, match="newer version .*registry_9999"):
        Registry(settings.registry_database)


def test_a_debate_and_a_spar_session_are_listed_apart_and_a_closed_store_stops_its_debates(settings: Settings) -> None:
    store = TranscriptStore(settings.transcripts_database)
    debate = store.create("Should towns cap rents?", 1, ADVOCATE, SKEPTIC, [])
    spar = store.create("Should towns cap rents?", 1, ADVOCATE, SKEPTIC, [], user_side="skeptic")
    store.add_turn(debate.id, DebateTurn(index=0, role="advocate", kind="opening", speaker="For", text="First."))
    store.add_turn(debate.id, DebateTurn(index=0, role="advocate", kind="opening", speaker="For", text="Again."))
    store.set_status(debate.id, COMPLETE)
    assert [row[0] for row in store.list()] == [debate.id] and [row[0] for row in store.list(spar=True)] == [spar.id]
    assert store.list()[0][4] == 1 and store.get(debate.id).turns[0].text == "Again."
    assert store.get(spar.id).status == RUNNING
    store.close()
    reopened = TranscriptStore(settings.transcripts_database)
    assert reopened.get(spar.id).status == STOPPED and reopened.get(debate.id).status == COMPLETE
    assert [d.id for d in reopened.on_motion("should towns  cap rents")] == [debate.id, spar.id]
    reopened.close()


def test_an_unreachable_database_server_is_one_clear_error() -> None:
    url = f"postgresql+psycopg://student:secret-pw@127.0.0.1:{free_port()}/school"
    with pytest.raises(storage_db.DatabaseUnavailableError, match="cannot reach the database at .*127.0.0.1") as raised:
        Registry(url)
    assert "secret-pw" not in str(raised.value) and raised.value.status == 503


def test_the_cli_says_so_in_one_line_when_the_database_server_is_down(tmp_path: Path) -> None:
    environment = {**os.environ, "DA_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "250",
                   "DA_DATABASE_URL": f"postgresql+psycopg://student:secret-pw@127.0.0.1:{free_port()}/school"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "documents"], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr and "secret-pw" not in done.stderr
    assert done.stderr.startswith("error: cannot reach the database at postgresql+psycopg://student:***@127.0.0.1")


def test_the_api_answers_503_while_the_database_is_gone(settings: Settings, database: str) -> None:
    """A replica whose database went away mid-service answers 503 with Retry-After on every route
    that reads it, health included (so a load balancer takes the replica out), instead of a 500."""
    if database == "sqlite":
        pytest.skip("a SQLite file cannot go away while open")
    import httpx
    from sqlalchemy import create_engine, make_url

    from assistant.server.service import Service
    from tests.servers import serve_app
    from ui import create_app

    service = Service(settings.model_copy(update={"llm_backend": "extractive"}))
    with serve_app(create_app(service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/api/health").status_code == 200
        url = make_url(settings.registry_database)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
        admin.dispose()
        for route in ("/api/health", "/api/documents", "/api/debates"):
            response = client.get(route)
            assert response.status_code == 503, (route, response.text)
            assert "cannot reach the database" in response.json()["detail"] and response.headers["retry-after"] == "10"
    service.close()


def test_a_debate_whose_process_died_is_read_as_stopped_once_it_could_not_still_be_running(settings: Settings) -> None:
    """A replica killed mid-debate cannot mark its debate: every reader shows it stopped (its saved
    turns kept) once nothing saved it for longer than a generation may run, and running before."""
    killed = TranscriptStore(settings.transcripts_database)  # the replica that dies: never closed
    debate = killed.create("Should towns cap rents?", 1, ADVOCATE, SKEPTIC, [])
    killed.add_turn(debate.id, DebateTurn(index=0, role="advocate", kind="opening", speaker="For", text="Saved."))
    patient = TranscriptStore(settings.transcripts_database, running_for_at_most_s=600)
    assert patient.get(debate.id).status == RUNNING and patient.list()[0][3] == RUNNING
    time.sleep(1.1)  # saves are stamped to the second
    hasty = TranscriptStore(settings.transcripts_database, running_for_at_most_s=0)
    assert hasty.get(debate.id).status == STOPPED and hasty.list()[0][3] == STOPPED
    assert hasty.get(debate.id).turns[0].text == "Saved."
    killed.set_status(debate.id, COMPLETE)  # a finished debate is never rewritten
    assert hasty.get(debate.id).status == COMPLETE
    for store in (killed, patient, hasty):
        store.close()
