"""The document registry (``assistant.storage.database``: a SQLite file, or PostgreSQL): what the library holds, independent of the vector store.

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

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Column, ColumnElement, Connection, ForeignKey, Index, Integer, MetaData, Table, Text, cast, delete, select, update

from assistant.core.passage import UNKNOWN_STANCE, Passage
from assistant.core.sides import DIRECTIONS, validate_stance
from assistant.storage import database
from ingest.injection import RULES_VERSION, FlaggedSentence, flag_sentences

PENDING = "pending"
COMPLETE = "complete"
DELETING = "deleting"

# The revision each PRAGMA user_version of a registry from before Alembic matches.
LEGACY_REVISIONS = ("registry_0001", "registry_0002", "registry_0003")
# Up to this many documents, their flagged sentences are read by id (see ``Registry._flags``).
_FEW_DOCUMENTS = 200

# The newest layout, as the queries see it; the migrations (``registry_*``) build it, and
# tests/test_database.py checks that the two agree.
METADATA = MetaData()
DOCUMENTS = Table(
    "documents", METADATA,
    Column("id", Text, primary_key=True),
    Column("hash", Text, nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", Text),
    Column("date", Text),
    Column("url", Text),
    Column("publisher", Text),
    Column("kind", Text, nullable=False),
    Column("n_passages", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("embedding_model", Text, nullable=False),
    Column("added_at", Text, nullable=False),
    Column("stance", Text, nullable=False, server_default=UNKNOWN_STANCE),
    Column("suggested_stance", Text),
    Index("documents_source", "source"),
)  # fmt: skip
PASSAGES = Table(
    "passages", METADATA,
    Column("id", Text, primary_key=True),
    Column("doc_id", Text, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Index("passages_doc", "doc_id", "idx"),
)  # fmt: skip
FLAGGED = Table(
    "flagged_sentences", METADATA,
    Column("doc_id", Text, ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True),
    Column("start", Integer, primary_key=True),
    Column("end", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("reason", Text, nullable=False),
)  # fmt: skip
META = Table("meta", METADATA, Column("key", Text, primary_key=True), Column("value", Text, nullable=False))
_DOC_FIELDS = [c for c in DOCUMENTS.c if c.name != "text"]
_PASSAGE_FIELDS = [PASSAGES.c.id, PASSAGES.c.doc_id, PASSAGES.c.idx.label("index"), PASSAGES.c.start, PASSAGES.c.end,
                   PASSAGES.c.text]  # fmt: skip


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
    """The registry at ``location``: a database URL, or the path of a SQLite file. Thread-safe
    (each call takes a connection of its own), and shared by processes through the database."""

    def __init__(self, location: str | Path) -> None:
        self._engine = database.engine_for(location)
        database.migrate(self._engine, "registry", lambda c: database.sqlite_layout(c, "documents", LEGACY_REVISIONS, "registry"))
        self._reflag()

    @staticmethod
    def _flagged_with(conn: Connection) -> str | None:
        return conn.execute(select(META.c.value).where(META.c.key == "injection_rules")).scalar()

    def _reflag(self) -> None:
        """Flag every stored document again if the rules changed since the last flagging (or it never
        ran: a library written before flags existed). Read first, so an open of an up-to-date
        registry takes no write lock for it; checked again inside the write, as another process may
        have done it in between."""
        with database.reading(self._engine) as conn:
            if self._flagged_with(conn) == RULES_VERSION:
                return
        with database.writing(self._engine) as conn:
            if self._flagged_with(conn) == RULES_VERSION:
                return
            for doc_id, text in conn.execute(select(DOCUMENTS.c.id, DOCUMENTS.c.text)).all():
                self._store_flags(conn, doc_id, flag_sentences(text))
            database.upsert(conn, META, {"key": "injection_rules", "value": RULES_VERSION}, ["key"])
            self._bump(conn)

    @staticmethod
    def _store_flags(conn: Connection, doc_id: str, flags: Iterable[FlaggedSentence]) -> None:
        conn.execute(delete(FLAGGED).where(FLAGGED.c.doc_id == doc_id))
        rows = [{"doc_id": doc_id, "start": f.start, "end": f.end, "text": f.text, "reason": f.reason} for f in flags]
        if rows:
            conn.execute(FLAGGED.insert(), rows)

    def _flags(self, conn: Connection, doc_ids: Iterable[str] | None) -> dict[str, list[FlaggedSentence]]:
        """The flagged sentences of ``doc_ids`` (all documents if None), by document, in text order.

        Few documents are asked for by id; many (a whole library) read the whole table, which holds
        only flagged sentences and stays small: an ``IN`` list of every id would hit the database's
        limit on parameters in a large library."""
        wanted = None if doc_ids is None else set(doc_ids)
        query = select(FLAGGED.c.doc_id, FLAGGED.c.start, FLAGGED.c.end, FLAGGED.c.text, FLAGGED.c.reason)
        if wanted is not None and len(wanted) <= _FEW_DOCUMENTS:
            if not wanted:
                return {}
            query = query.where(FLAGGED.c.doc_id.in_(sorted(wanted)))
        flags: dict[str, list[FlaggedSentence]] = {}
        for row in conn.execute(query.order_by(FLAGGED.c.doc_id, FLAGGED.c.start)):
            if wanted is None or row[0] in wanted:
                flags.setdefault(row[0], []).append(FlaggedSentence(row[1], row[2], row[3], row[4]))
        return flags

    def with_set_aside(self, passages: Iterable[Passage]) -> list[Passage]:
        """``passages`` with the spans of their documents' flagged sentences (relative to each
        passage's text) in ``set_aside``, as the registry holds them now."""
        with database.reading(self._engine) as conn:
            return self._with_set_aside(conn, passages)

    def _with_set_aside(self, conn: Connection, passages: Iterable[Passage]) -> list[Passage]:
        passages = list(passages)
        flags = self._flags(conn, (p.doc_id for p in passages))
        return [
            replace(p, set_aside=tuple(
                (max(f.start, p.start) - p.start, min(f.end, p.end) - p.start)
                for f in flags.get(p.doc_id, ()) if f.start < p.end and p.start < f.end
            ))
            for p in passages
        ]  # fmt: skip

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def one_writer(self) -> Iterator[None]:
        """While held, no other process sharing this registry ingests, repairs or reindexes: each
        starts by finishing the documents it finds pending, and would otherwise rewrite the ones
        another process is writing at that moment (``database.exclusive``)."""
        with database.exclusive(self._engine, "library-writes"):
            yield

    @staticmethod
    def _bump(conn: Connection) -> None:
        conn.execute(update(META).where(META.c.key == "generation").values(value=cast(cast(META.c.value, Integer) + 1, Text)))

    def generation(self) -> int:
        with database.reading(self._engine) as conn:
            return self._generation(conn)

    @staticmethod
    def _generation(conn: Connection) -> int:
        return int(conn.execute(select(META.c.value).where(META.c.key == "generation")).scalar_one())

    def _documents(self, conn: Connection, *where: ColumnElement[bool]) -> list[DocumentRecord]:
        rows = conn.execute(select(*_DOC_FIELDS).where(*where).order_by(DOCUMENTS.c.added_at, DOCUMENTS.c.id)).mappings().all()
        flags = self._flags(conn, [row["id"] for row in rows] if where else None)
        return [DocumentRecord(**row, flagged_sentences=tuple(flags.get(row["id"], ()))) for row in rows]

    def _read_documents(self, *where: ColumnElement[bool]) -> list[DocumentRecord]:
        with database.reading(self._engine) as conn:
            return self._documents(conn, *where)

    def get(self, doc_id: str) -> DocumentRecord | None:
        found = self._read_documents(DOCUMENTS.c.id == doc_id)
        return found[0] if found else None

    def find_by_hash(self, content_hash: str) -> DocumentRecord | None:
        found = self._read_documents(DOCUMENTS.c.hash == content_hash)
        return found[0] if found else None

    def find_by_source(self, source: str) -> list[DocumentRecord]:
        return self._read_documents(DOCUMENTS.c.source == source)

    def documents(self, status: str | None = COMPLETE) -> list[DocumentRecord]:
        return self._read_documents() if status is None else self._read_documents(DOCUMENTS.c.status == status)

    def text(self, doc_id: str) -> str | None:
        with database.reading(self._engine) as conn:
            return conn.execute(select(DOCUMENTS.c.text).where(DOCUMENTS.c.id == doc_id)).scalar()

    def begin(self, record: DocumentRecord, text: str, passages: list[Passage]) -> None:
        """Record a document as pending, with its passages, before anything reaches the vector store."""
        with database.writing(self._engine) as conn:
            conn.execute(delete(DOCUMENTS).where(DOCUMENTS.c.id == record.id))
            fields = {c.name: getattr(record, c.name) for c in _DOC_FIELDS}
            conn.execute(DOCUMENTS.insert().values(
                {**fields, "text": text, "status": PENDING, "stance": validate_stance(record.stance)}
            ))  # fmt: skip
            if passages:
                conn.execute(PASSAGES.insert(), [
                    {"id": p.id, "doc_id": p.doc_id, "idx": p.index, "start": p.start, "end": p.end, "text": p.text}
                    for p in passages
                ])  # fmt: skip
            self._store_flags(conn, record.id, record.flagged_sentences)

    def _update_documents(self, where: ColumnElement[bool], bump: bool = True, **values: object) -> int:
        with database.writing(self._engine) as conn:
            changed = conn.execute(update(DOCUMENTS).where(where).values(**values)).rowcount
            if bump:
                self._bump(conn)
        return changed

    def set_status(self, doc_id: str, status: str) -> None:
        self._update_documents(DOCUMENTS.c.id == doc_id, status=status)

    def mark_all_pending(self) -> int:
        """Mark every complete document pending (before its vectors are rebuilt); returns how many."""
        return self._update_documents(DOCUMENTS.c.status == COMPLETE, status=PENDING)

    def set_stance(self, doc_id: str, stance: str) -> str:
        """Confirm a document's stance (validated); the text and vectors stay as they are."""
        stance = validate_stance(stance)
        self._update_documents(DOCUMENTS.c.id == doc_id, bump=False, stance=stance)
        return stance

    def set_suggested_stance(self, doc_id: str, stance: str) -> None:
        self._update_documents(DOCUMENTS.c.id == doc_id, bump=False, suggested_stance=validate_stance(stance))

    def stances(self) -> dict[str, str]:
        """Confirmed stance of every complete document, read fresh (a debate must see a change at once)."""
        with database.reading(self._engine) as conn:
            rows = conn.execute(select(DOCUMENTS.c.id, DOCUMENTS.c.stance).where(DOCUMENTS.c.status == COMPLETE)).all()
        return {row[0]: row[1] for row in rows}

    def remove(self, doc_id: str) -> None:
        with database.writing(self._engine) as conn:
            conn.execute(delete(DOCUMENTS).where(DOCUMENTS.c.id == doc_id))
            self._bump(conn)

    def passages(self, doc_ids: Iterable[str] | None = None, status: str | None = COMPLETE) -> list[Passage]:
        """Passages in document order, of complete documents unless ``status`` says otherwise."""
        with database.reading(self._engine) as conn:
            return self._passages(conn, doc_ids, status)

    def _passages(self, conn: Connection, doc_ids: Iterable[str] | None = None, status: str | None = COMPLETE) -> list[Passage]:
        query = select(*_PASSAGE_FIELDS).join(DOCUMENTS, DOCUMENTS.c.id == PASSAGES.c.doc_id)
        if status is not None:
            query = query.where(DOCUMENTS.c.status == status)
        if doc_ids is not None:
            query = query.where(PASSAGES.c.doc_id.in_(list(doc_ids)))
        rows = conn.execute(query.order_by(DOCUMENTS.c.added_at, PASSAGES.c.doc_id, PASSAGES.c.idx)).mappings()
        return self._with_set_aside(conn, (Passage(**row) for row in rows))

    def snapshot(self) -> tuple[int, list[Passage], list[DocumentRecord]]:
        """The generation, the passages and the documents of complete documents, from one read
        transaction with one consistent view: a delete between two separate reads would leave
        passages whose document is gone (a search answered 500), and another process's write
        cannot land in between either."""
        with database.reading(self._engine, consistent=True) as conn:
            return self._generation(conn), self._passages(conn), self._documents(conn, DOCUMENTS.c.status == COMPLETE)

    def passage(self, pid: str) -> Passage | None:
        with database.reading(self._engine) as conn:
            row = conn.execute(select(*_PASSAGE_FIELDS).where(PASSAGES.c.id == pid)).mappings().first()
            return self._with_set_aside(conn, [Passage(**row)])[0] if row else None


def _shortened(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
