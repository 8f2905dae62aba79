"""The document registry (SQLite): what the library holds, independent of the vector store.

It keeps each document's id, title, source, content hash, cleaned text and passages, so
that the vector index can be rebuilt from it (a new embedding model needs no re-reading
of the original files), BM25 can be built without scanning the vector store, and an
interrupted ingest or delete can be finished. Each document has a status:
``pending`` (passages may be partly in the vector store), ``complete``, ``deleting``.
Only complete documents are searchable. Every change bumps a generation counter that
caches (the BM25 index) compare against, so several processes stay consistent.

It also keeps, per document, the sentences set aside because they address the assistant
(``ingest.injection``): listed in the Library, and left out of everything offered to a model
(each ``Passage`` carries the spans set aside in it). They are flagged at ingest and again
whenever the detector's rules change (``RULES_VERSION``), existing documents included.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from assistant.core.passage import UNKNOWN_STANCE, Passage
from assistant.core.sides import DIRECTIONS, validate_stance
from ingest.injection import RULES_VERSION, FlaggedSentence, flag_sentences

PENDING = "pending"
COMPLETE = "complete"
DELETING = "deleting"

# The schema version (PRAGMA user_version) this code writes; see ``_migrate``.
SCHEMA_VERSION = 2
# Up to this many documents, their flagged sentences are read by id (see ``Registry._flags``).
_FEW_DOCUMENTS = 200


_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    author TEXT,
    date TEXT,
    url TEXT,
    publisher TEXT,
    kind TEXT NOT NULL,
    n_passages INTEGER NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    embedding_model TEXT NOT NULL,
    added_at TEXT NOT NULL,
    stance TEXT NOT NULL DEFAULT 'unknown',
    suggested_stance TEXT
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE TABLE IF NOT EXISTS passages (
    id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id, idx);
CREATE TABLE IF NOT EXISTS flagged_sentences (
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (doc_id, start)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0');
"""

_DOC_COLUMNS = (
    "id, hash, source, title, author, date, url, publisher, kind, n_passages, status, embedding_model, added_at, "
    "stance, suggested_stance"
)


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    hash: str
    source: str
    title: str
    author: str | None
    date: str | None
    url: str | None
    publisher: str | None
    kind: str
    n_passages: int
    status: str
    embedding_model: str
    added_at: str
    stance: str = UNKNOWN_STANCE  # confirmed by a person (manifest, --stance, API, da stance)
    suggested_stance: str | None = None  # the local model's guess for a document without a stance
    # Sentences that address the assistant, set aside at ingest (``ingest.injection``), in text order.
    flagged_sentences: tuple[FlaggedSentence, ...] = ()

    @property
    def stance_shown(self) -> str:
        """The confirmed stance ("for" or "against" the motion), or the model's suggestion marked as such until a person confirms it."""
        if self.stance == UNKNOWN_STANCE and self.suggested_stance not in (None, UNKNOWN_STANCE):
            return f"unknown (suggested: {DIRECTIONS.get(self.suggested_stance, self.suggested_stance)})"
        return DIRECTIONS.get(self.stance, self.stance)

    @property
    def set_aside_shown(self) -> str:
        """How many sentences were set aside because they address the assistant, and which ("" if none)."""
        if not self.flagged_sentences:
            return ""
        n = len(self.flagged_sentences)
        listed = "; ".join(
            f"“{_shortened(f.text)}” ({f.reason.partition(':')[0]})" for f in self.flagged_sentences
        )
        return f"{n} sentence{'s' if n != 1 else ''} set aside: {listed}"



class Registry:
    """Thread-safe access to the registry database at ``path``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        """Bring an older database up to ``SCHEMA_VERSION`` in place; nothing is lost.

        Version 0 (before stances) has no ``stance``/``suggested_stance`` columns: they are
        added, every existing document starting as ``unknown``. ``CREATE TABLE IF NOT EXISTS``
        alone would leave such a database without the columns. Version 1 has no flagged
        sentences: the table is created and every stored document flagged (``_reflag``, which
        also runs whenever the detector's rules changed since the last flagging).
        """
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the registry was written by a newer version (schema {version}, this code knows {SCHEMA_VERSION})"
                )
            self._conn.executescript(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(documents)")}
            if "stance" not in columns:
                self._conn.execute("ALTER TABLE documents ADD COLUMN stance TEXT NOT NULL DEFAULT 'unknown'")
            if "suggested_stance" not in columns:
                self._conn.execute("ALTER TABLE documents ADD COLUMN suggested_stance TEXT")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._reflag()

    def _flagged_with(self, conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'injection_rules'").fetchone()
        return row[0] if row else None

    def _reflag(self) -> None:
        """Flag every stored document again if the rules changed since the last flagging (or it never
        ran: a library written before flags existed). Read first, so an open of an up-to-date
        registry takes no write lock for it; checked again inside the write, as another process may
        have done it in between."""
        if self._flagged_with(self._conn) == RULES_VERSION:
            return
        with self._transaction() as conn:
            if self._flagged_with(conn) == RULES_VERSION:
                return
            for doc_id, text in conn.execute("SELECT id, text FROM documents").fetchall():
                self._store_flags(conn, doc_id, flag_sentences(text))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('injection_rules', ?)", (RULES_VERSION,))
            self._bump(conn)

    @staticmethod
    def _store_flags(conn: sqlite3.Connection, doc_id: str, flags: Iterable[FlaggedSentence]) -> None:
        conn.execute("DELETE FROM flagged_sentences WHERE doc_id = ?", (doc_id,))
        conn.executemany(
            "INSERT INTO flagged_sentences (doc_id, start, end, text, reason) VALUES (?, ?, ?, ?, ?)",
            [(doc_id, f.start, f.end, f.text, f.reason) for f in flags],
        )

    def _flags(self, doc_ids: Iterable[str] | None) -> dict[str, list[FlaggedSentence]]:
        """The flagged sentences of ``doc_ids`` (all documents if None), by document, in text order.

        Few documents are asked for by id; many (a whole library) read the whole table, which holds
        only flagged sentences and stays small: an ``IN`` list of every id would hit SQLite's limit
        on parameters in a large library."""
        wanted = None if doc_ids is None else set(doc_ids)
        params: tuple[str, ...]
        sql, params = "SELECT doc_id, start, end, text, reason FROM flagged_sentences", ()
        if wanted is not None and len(wanted) <= _FEW_DOCUMENTS:
            if not wanted:
                return {}
            params = tuple(sorted(wanted))
            sql += f" WHERE doc_id IN ({', '.join('?' * len(params))})"
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY doc_id, start", params).fetchall()
        flags: dict[str, list[FlaggedSentence]] = {}
        for row in rows:
            if wanted is None or row[0] in wanted:
                flags.setdefault(row[0], []).append(FlaggedSentence(row[1], row[2], row[3], row[4]))
        return flags

    def with_set_aside(self, passages: Iterable[Passage]) -> list[Passage]:
        """``passages`` with the spans of their documents' flagged sentences (relative to each
        passage's text) in ``set_aside``, as the registry holds them now."""
        passages = list(passages)
        flags = self._flags(p.doc_id for p in passages)
        return [
            replace(p, set_aside=tuple(
                (max(f.start, p.start) - p.start, min(f.end, p.end) - p.start)
                for f in flags.get(p.doc_id, ()) if f.start < p.end and p.start < f.end
            ))
            for p in passages
        ]  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _bump(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def generation(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def _documents(self, where: str, params: Iterable[object]) -> list[DocumentRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_DOC_COLUMNS} FROM documents {where} ORDER BY added_at, id", tuple(params)
            ).fetchall()
        flags = self._flags([row["id"] for row in rows] if where else None)
        return [DocumentRecord(**dict(row), flagged_sentences=tuple(flags.get(row["id"], ()))) for row in rows]

    def get(self, doc_id: str) -> DocumentRecord | None:
        found = self._documents("WHERE id = ?", (doc_id,))
        return found[0] if found else None

    def find_by_hash(self, content_hash: str) -> DocumentRecord | None:
        found = self._documents("WHERE hash = ?", (content_hash,))
        return found[0] if found else None

    def find_by_source(self, source: str) -> list[DocumentRecord]:
        return self._documents("WHERE source = ?", (source,))

    def documents(self, status: str | None = COMPLETE) -> list[DocumentRecord]:
        if status is None:
            return self._documents("", ())
        return self._documents("WHERE status = ?", (status,))

    def text(self, doc_id: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT text FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def begin(self, record: DocumentRecord, text: str, passages: list[Passage]) -> None:
        """Record a document as pending, with its passages, before anything reaches the vector store."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM documents WHERE id = ?", (record.id,))
            conn.execute(
                f"INSERT INTO documents ({_DOC_COLUMNS}, text) VALUES ({', '.join('?' * 16)})",
                (
                    record.id, record.hash, record.source, record.title, record.author, record.date,
                    record.url, record.publisher, record.kind, record.n_passages, PENDING,
                    record.embedding_model, record.added_at, validate_stance(record.stance),
                    record.suggested_stance, text,
                ),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO passages (id, doc_id, idx, start, end, text) VALUES (?, ?, ?, ?, ?, ?)",
                [(p.id, p.doc_id, p.index, p.start, p.end, p.text) for p in passages],
            )
            self._store_flags(conn, record.id, record.flagged_sentences)

    def set_status(self, doc_id: str, status: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE documents SET status = ? WHERE id = ?", (status, doc_id))
            self._bump(conn)

    def mark_all_pending(self) -> int:
        """Mark every complete document pending (before its vectors are rebuilt); returns how many."""
        with self._transaction() as conn:
            changed = conn.execute("UPDATE documents SET status = ? WHERE status = ?", (PENDING, COMPLETE)).rowcount
            self._bump(conn)
        return changed

    def set_stance(self, doc_id: str, stance: str) -> str:
        """Confirm a document's stance (validated); the text and vectors stay as they are."""
        stance = validate_stance(stance)
        with self._transaction() as conn:
            conn.execute("UPDATE documents SET stance = ? WHERE id = ?", (stance, doc_id))
        return stance

    def set_suggested_stance(self, doc_id: str, stance: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE documents SET suggested_stance = ? WHERE id = ?", (validate_stance(stance), doc_id))

    def stances(self) -> dict[str, str]:
        """Confirmed stance of every complete document, read fresh (a debate must see a change at once)."""
        with self._lock:
            rows = self._conn.execute("SELECT id, stance FROM documents WHERE status = ?", (COMPLETE,)).fetchall()
        return {row[0]: row[1] for row in rows}

    def remove(self, doc_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            self._bump(conn)

    def passages(self, doc_ids: Iterable[str] | None = None, status: str | None = COMPLETE) -> list[Passage]:
        """Passages in document order, of complete documents unless ``status`` says otherwise."""
        sql = (
            "SELECT p.id, p.doc_id, p.idx AS \"index\", p.start, p.end, p.text FROM passages p "
            "JOIN documents d ON d.id = p.doc_id"
        )
        clauses: list[str] = []
        params: list[object] = []
        if status is not None:
            clauses.append("d.status = ?")
            params.append(status)
        if doc_ids is not None:
            ids = list(doc_ids)
            clauses.append(f"p.doc_id IN ({', '.join('?' * len(ids))})" if ids else "0")
            params.extend(ids)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY d.added_at, p.doc_id, p.idx", params).fetchall()
        return self.with_set_aside(Passage(**dict(row)) for row in rows)

    def snapshot(self) -> tuple[int, list[Passage], list[DocumentRecord]]:
        """The generation, the passages and the documents of complete documents, from one read
        transaction: a delete between two separate reads would leave passages whose document is
        gone (a search answered 500), and another process's write cannot land in between either
        (SQLite WAL gives a read transaction one consistent view)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                generation = self.generation()
                passages = self.passages()
                documents = self.documents()
            finally:
                self._conn.execute("COMMIT")
        return generation, passages, documents

    def passage(self, pid: str) -> Passage | None:
        with self._lock:
            row = self._conn.execute(
                'SELECT id, doc_id, idx AS "index", start, end, text FROM passages WHERE id = ?', (pid,)
            ).fetchone()
        return self.with_set_aside([Passage(**dict(row))])[0] if row else None


def _shortened(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
