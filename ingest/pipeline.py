"""Ingest: load -> clean -> split -> id -> embed -> store + registry, one document at a time.

Two phases so a long ingest can show an honest ETA: first every item is read, cleaned
and split (fast, and any per-item error is recorded without stopping the batch), then
passages are embedded and written, with a progress bar counted in passages.

Each document is atomic: the registry records it as ``pending`` with all its passages
before the first vector is written and marks it ``complete`` after the last. A crash in
between leaves a pending record that ``finish_interrupted`` (run before every ingest)
completes from the registry, so the store and the registry always end up agreeing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from assistant.core.passage import Passage
from assistant.core.settings import Settings
from assistant.core.sides import StanceError, validate_stance
from assistant.storage.store import PassageStore, StoreUnavailableError
from ingest.clean import clean_text, guess_author, guess_title
from ingest.injection import flag_sentences
from ingest.loaders import (
    SUPPORTED_SUFFIXES,
    LoadError,
    RawDocument,
    iter_files,
    load_file,
    load_pasted,
    load_url,
)
from assistant.storage.registry import (
    COMPLETE,
    DELETING,
    PENDING,
    UNKNOWN_STANCE,
    DocumentRecord,
    Registry,
    now_iso,
)
from ingest.split import PassageSplitter

# Embedding batches per model call during ingest (see Ingestor._write_documents); progress
# advances once per call, every few seconds on a laptop CPU.
WRITE_BATCHES = 8

ProgressCallback = Callable[[int, int, str], None]
"""Called as (passages done, passages total, current document title)."""

ADDED = "added"
REPLACED = "replaced"
UNCHANGED = "unchanged"
DUPLICATE = "duplicate"
SKIPPED = "skipped"
ERROR = "error"


@dataclass
class ItemResult:
    """What happened to one input item (file, URL or pasted text)."""

    item: str
    status: str
    message: str = ""
    doc_id: str | None = None
    title: str | None = None
    n_passages: int = 0
    removed: dict[str, int] = field(default_factory=dict)


@dataclass
class PreparedDocument:
    """A document cleaned and split, ready to embed."""

    item: str
    record: DocumentRecord
    text: str
    passages: list[Passage]
    removed: dict[str, int]


UPLOAD_PREFIX = "upload:"


class DuplicateUploadError(ValueError):
    """Two uploads of one request share a name, and a name is what identifies an upload."""


def upload_source(name: str) -> str:
    """The stable source of an uploaded file: its name, not the temporary path it was saved under
    (gone after the request), so uploading an edited file under the same name replaces the old one."""
    return UPLOAD_PREFIX + name


def check_upload_names(names: Iterable[str]) -> None:
    """DuplicateUploadError if two uploads share a name: the later would silently replace the earlier."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DuplicateUploadError(
                f"two uploaded files are named {name!r}; a document is known by its file name ({upload_source(name)}), "
                "so rename one and upload again"
            )
        seen.add(name)


def is_url(item: str) -> bool:
    return item.lower().startswith(("http://", "https://", "ftp://", "file://", "gopher://"))


def expand_items(items: Iterable[str]) -> tuple[list[str], list[ItemResult]]:
    """Paths and URLs -> concrete files and URLs; missing paths and unsupported files are reported."""
    expanded: list[str] = []
    problems: list[ItemResult] = []
    for item in items:
        if is_url(item):
            expanded.append(item)
            continue
        path = Path(item).expanduser()
        if not path.exists():
            problems.append(ItemResult(item, ERROR, f"no such file or folder: {item}"))
            continue
        if not path.is_dir():  # a file, or a device, pipe or socket that load_file refuses for this item
            expanded.append(str(path))
            continue
        for file in iter_files(path):
            if file.suffix.lower() in SUPPORTED_SUFFIXES:
                expanded.append(str(file))
            else:
                problems.append(ItemResult(str(file), SKIPPED, f"unsupported file type {file.suffix or '(none)'}"))
    return expanded, problems


def _as_upload(raw: RawDocument, name: str) -> RawDocument:
    raw.source = upload_source(name)
    return raw


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare(
    raw: RawDocument, item: str, splitter: PassageSplitter, settings: Settings, stance: str | None = None
) -> PreparedDocument:
    """Clean and split a raw document and give it its deterministic ids.

    ``stance`` (from ``da ingest --stance`` or the API) wins over the manifest's; a manifest
    stance that is not allowed fails this item with the allowed values named. Sentences that
    address the assistant are flagged here (``ingest.injection``) and recorded with the document.
    """
    cleaned = clean_text(raw.text)
    if not cleaned.text.strip():
        raise LoadError(f"{item}: no article text left after removing boilerplate")
    digest = content_hash(cleaned.text)
    doc_id = digest[:16]
    meta = raw.metadata
    try:
        stance = validate_stance(stance or meta.get("stance"))
    except StanceError as exc:
        raise LoadError(f"{item}: {exc}") from exc
    is_file = raw.kind not in ("pasted",) and not is_url(raw.source)
    fallback_title = Path(raw.source.removeprefix(UPLOAD_PREFIX)).stem if is_file else raw.source
    record = DocumentRecord(
        id=doc_id,
        hash=digest,
        source=raw.source,
        title=(meta.get("title") or guess_title(cleaned.text) or fallback_title)[:300],
        author=meta.get("author") or guess_author(cleaned.text),
        date=meta.get("date"),
        url=meta.get("url"),
        publisher=meta.get("publisher"),
        kind=raw.kind,
        n_passages=0,
        status=PENDING,
        embedding_model=settings.embedding_model,
        added_at=now_iso(),
        stance=stance,
        flagged_sentences=tuple(flag_sentences(cleaned.text)),
    )
    passages = splitter.split(cleaned.text, doc_id)
    record = DocumentRecord(**{**record.__dict__, "n_passages": len(passages)})
    return PreparedDocument(item, record, cleaned.text, passages, dict(cleaned.removed))


def stored_document_ids(results: Iterable[ItemResult]) -> list[str]:
    """The ids of the documents an ingest stored (added or replaced): those a stance may be suggested for."""
    return [r.doc_id for r in results if r.status in (ADDED, REPLACED) and r.doc_id]


def set_aside_note(record: DocumentRecord) -> str:
    """The ingest result's note on a document with flagged sentences ("; 2 sentences set aside: ..."), else ""."""
    n = len(record.flagged_sentences)
    if not n:
        return ""
    return f"; {n} sentence{'s' if n != 1 else ''} set aside: {'it addresses' if n == 1 else 'they address'} the assistant"


def passage_metadata(record: DocumentRecord, passage: Passage) -> dict:
    return {
        "doc_id": record.id,
        "index": passage.index,
        "start": passage.start,
        "end": passage.end,
        "title": record.title,
        "source": record.source,
    }


class _PassageCounter:
    """Passages embedded so far in one ingest: a tqdm bar, and the caller's callback if any."""

    def __init__(self, total: int, progress: ProgressCallback | None, show_progress: bool) -> None:
        self.total, self.done, self.progress = total, 0, progress
        self.bar = tqdm(total=total, desc="embedding", unit="passage", disable=not show_progress)

    def advance(self, n: int, title: str) -> None:
        self.done += n
        self.bar.update(n)
        if self.progress:
            self.progress(self.done, self.total, title)

    def close(self) -> None:
        self.bar.close()


class Ingestor:
    """Runs ingests against one registry and one store."""

    def __init__(self, settings: Settings, registry: Registry, store: PassageStore, splitter: PassageSplitter) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.splitter = splitter

    # -- writing documents ---------------------------------------------------------------
    @property
    def _passages_per_write(self) -> int:
        """Passages per model call and per group of documents written together."""
        return max(self.settings.embedding_batch_size, 1) * WRITE_BATCHES

    def _write_documents(
        self, documents: list[tuple[DocumentRecord, list[Passage]]], advance: Callable[[int], None]
    ) -> None:
        """Embed and upsert the passages of pending documents, then mark each complete.

        Passages of several small documents go to the model together, up to
        ``WRITE_BATCHES`` embedding batches per call: sentence-transformers sorts a call's texts
        by length, so batches hold passages of similar length and little padding, and the
        model runs much faster than on one short call per document (``python -m bench``).
        Each document stays atomic all the same: pending before its first vector is written,
        complete only after its last.
        """
        rows = [(record, p) for record, passages in documents for p in passages]
        for start in range(0, len(rows), self._passages_per_write):
            chunk = rows[start : start + self._passages_per_write]
            self.store.add([p.id for _, p in chunk], [p.text for _, p in chunk], [passage_metadata(r, p) for r, p in chunk])
            advance(len(chunk))
        for record, _ in documents:
            self.registry.set_status(record.id, COMPLETE)

    def _write(self, record: DocumentRecord, passages: list[Passage], advance: Callable[[int], None]) -> None:
        self._write_documents([(record, passages)], advance)

    def delete(self, doc_id: str) -> None:
        """Two-step delete that a crash cannot leave half done (see ``finish_interrupted``)."""
        self.registry.set_status(doc_id, DELETING)
        self.store.delete_document(doc_id)
        self.registry.remove(doc_id)

    def finish_interrupted(self) -> list[str]:
        """Complete pending ingests and deletes left by a crash; returns the titles it touched."""
        touched: list[str] = []
        for record in self.registry.documents(status=DELETING):
            self.store.delete_document(record.id)
            self.registry.remove(record.id)
            touched.append(f"deleted {record.title}")
        for record in self.registry.documents(status=PENDING):
            self.store.delete_document(record.id)  # drop partial vectors, then write all again
            passages = self.registry.passages([record.id], status=PENDING)
            self._write(record, passages, lambda n: None)
            self._drop_older_versions(record)
            touched.append(f"completed {record.title}")
        for record in self._superseded():
            self.delete(record.id)
            touched.append(f"removed the earlier version of {record.title}")
        return touched

    def _superseded(self) -> list[DocumentRecord]:
        """Complete documents that a newer complete document from the same source replaces.

        An ingest marks the new version complete, then deletes the old one; a crash between
        the two leaves both searchable, and re-ingesting the file only reports it unchanged.
        Normal ingests keep one version per source, so the older ones are the leftovers.
        """
        newest: dict[str, DocumentRecord] = {}
        older: list[DocumentRecord] = []
        for record in self.registry.documents(status=COMPLETE):  # oldest first
            if record.source in newest:
                older.append(newest[record.source])
            newest[record.source] = record
        return older

    def _drop_older_versions(self, record: DocumentRecord) -> list[DocumentRecord]:
        older = [d for d in self.registry.find_by_source(record.source) if d.id != record.id]
        for old in older:
            self.delete(old.id)
        return older

    # -- batches ------------------------------------------------------------------------------
    def ingest(
        self,
        items: Iterable[str] = (),
        *,
        texts: Iterable[tuple[str, str | None]] = (),
        uploads: Iterable[tuple[str, str]] = (),
        progress: ProgressCallback | None = None,
        show_progress: bool = False,
        stance: str | None = None,
    ) -> list[ItemResult]:
        """Ingest paths/URLs, pasted ``(text, title)`` pairs and uploaded ``(saved path, file name)``
        pairs (recorded as ``upload:<file name>``); one result per item, in order.

        ``stance`` applies to every item (StanceError before anything is read if not allowed).
        """
        stance = validate_stance(stance) if stance is not None else None
        uploads = list(uploads)
        check_upload_names(name for _, name in uploads)
        self.finish_interrupted()
        files, results = expand_items(items)
        loaders = self._loaders(files, texts, uploads)
        prepared = self._prepare_all(loaders, stance, results, show_progress)
        counter = _PassageCounter(sum(len(p.passages) for p in prepared), progress, show_progress)
        return results + self._write_prepared(prepared, counter)

    def _loaders(
        self, files: list[str], texts: Iterable[tuple[str, str | None]], uploads: list[tuple[str, str]]
    ) -> list[tuple[str, Callable[[], RawDocument]]]:
        """(item name, reader) per input, uploads first: nothing is read yet, so errors land per item."""
        loaders: list[tuple[str, Callable[..., RawDocument]]] = [  # lambdas with defaults: mypy cannot infer them
            (name, lambda path=path, name=name: _as_upload(load_file(Path(path), self.settings), name))
            for path, name in uploads
        ]
        loaders += [
            (item, (lambda item=item: load_url(item, self.settings)) if is_url(item)
             else (lambda item=item: load_file(Path(item), self.settings)))
            for item in files
        ]  # fmt: skip
        loaders += [
            (f"pasted text {title or ''}".strip(), lambda text=text, title=title: load_pasted(text, title))
            for text, title in texts
        ]
        return loaders

    def _prepare_all(
        self, loaders: list[tuple[str, Callable[[], RawDocument]]], stance: str | None, results: list[ItemResult],
        show_progress: bool,
    ) -> list[PreparedDocument]:  # fmt: skip
        """Read, clean and split every item; an item that fails gets an error in ``results`` and the rest go on."""
        prepared: list[PreparedDocument] = []
        for item, load in tqdm(loaders, desc="reading", unit="item", disable=not show_progress or len(loaders) < 2):
            try:
                prepared.append(prepare(load(), item, self.splitter, self.settings, stance))
            except LoadError as exc:
                results.append(ItemResult(item, ERROR, str(exc)))
            except Exception as exc:  # an unexpected failure of one item must not stop the batch
                results.append(ItemResult(item, ERROR, f"{item}: {type(exc).__name__}: {exc}"))
        return prepared

    def _write_prepared(self, prepared: list[PreparedDocument], counter: _PassageCounter) -> list[ItemResult]:
        """Register and embed the prepared documents in groups of about ``_passages_per_write`` passages;
        one result per document, in order (documents the library already holds are not written)."""
        slots: list[ItemResult | None] = []  # one per prepared document, in order
        group: list[tuple[int, PreparedDocument]] = []  # registered as pending, vectors not yet written
        try:
            for doc in prepared:
                if any(d.record.hash == doc.record.hash for _, d in group):
                    # the same text twice in one ingest: the second is a duplicate
                    self._write_group(group, slots, counter)
                known = self._already_known(doc)
                doc = self._inherit_stance(doc)
                if known is not None:
                    counter.advance(len(doc.passages), doc.record.title)
                    slots.append(known)
                    continue
                self.registry.begin(doc.record, doc.text, doc.passages)
                slots.append(None)
                group.append((len(slots) - 1, doc))
                if sum(len(d.passages) for _, d in group) >= self._passages_per_write:
                    self._write_group(group, slots, counter)
            if group:
                self._write_group(group, slots, counter)
        finally:
            counter.close()
        return [slot for slot in slots if slot is not None]

    def _write_group(
        self, group: list[tuple[int, PreparedDocument]], slots: list[ItemResult | None], counter: _PassageCounter
    ) -> None:
        """Write the vectors of the pending documents in ``group``, fill in their results, empty the group."""
        docs = [doc for _, doc in group]
        title = docs[-1].record.title
        counter.bar.set_postfix_str(title[:40])
        try:
            self._write_documents([(d.record, d.passages) for d in docs], lambda n: counter.advance(n, title))
        except StoreUnavailableError:
            # Every later document would wait out the same retry budget and fail the same
            # way: stop here. These stay pending; the next ingest finishes them.
            raise
        except Exception as exc:  # unexpected: report these documents, keep the rest going
            for index, doc in group:
                slots[index] = ItemResult(doc.item, ERROR, f"{type(exc).__name__}: {exc}", doc.record.id)
        else:
            for index, doc in group:
                slots[index] = self._finished(doc)
        group.clear()

    def _inherit_stance(self, doc: PreparedDocument) -> PreparedDocument:
        """A new version of a document keeps the stance a person gave the earlier one."""
        if doc.record.stance != UNKNOWN_STANCE:
            return doc
        older = [d.stance for d in self.registry.find_by_source(doc.record.source) if d.stance != UNKNOWN_STANCE]
        if not older:
            return doc
        return PreparedDocument(doc.item, DocumentRecord(**{**doc.record.__dict__, "stance": older[-1]}), doc.text,
                                doc.passages, doc.removed)  # fmt: skip

    def _already_known(self, doc: PreparedDocument) -> ItemResult | None:
        """The result for a document whose text the library already holds, else None.

        Re-adding an unchanged document with a stance (manifest or ``--stance``) sets that
        stance; nothing is re-embedded.
        """
        existing = self.registry.find_by_hash(doc.record.hash)
        if existing is None or existing.status != COMPLETE:
            return None
        base = self._result_fields(doc)
        if existing.source == doc.record.source:
            if doc.record.stance != UNKNOWN_STANCE and doc.record.stance != existing.stance:
                self.registry.set_stance(existing.id, doc.record.stance)
                return ItemResult(doc.item, UNCHANGED, f"already in the library; stance set to {doc.record.stance}", **base)
            return ItemResult(doc.item, UNCHANGED, "already in the library, unchanged", **base)
        return ItemResult(
            doc.item,
            DUPLICATE,
            f"same text as '{existing.title}' already in the library from {existing.source}; not added again",
            **base,
        )

    def _finished(self, doc: PreparedDocument) -> ItemResult:
        """After a document's vectors are written: drop its earlier versions and report it."""
        older = self._drop_older_versions(doc.record)
        base = self._result_fields(doc)
        aside = set_aside_note(doc.record)
        if older:
            return ItemResult(doc.item, REPLACED, f"replaced the earlier version ({len(older)} removed){aside}", **base)
        return ItemResult(doc.item, ADDED, f"{doc.record.n_passages} passages{aside}", **base)

    @staticmethod
    def _result_fields(doc: PreparedDocument) -> dict:
        record = doc.record
        return dict(doc_id=record.id, title=record.title, n_passages=record.n_passages, removed=doc.removed)

    def reindex(self, show_progress: bool = False, progress: ProgressCallback | None = None) -> int:
        """Re-split and re-embed every pending document from the registry's cleaned text.

        ``Library.reindex`` marks all complete documents pending before it drops the old
        vectors, so a crash part-way leaves pending documents, never complete ones without
        vectors; running reindex (or any ingest) again finishes them.
        """
        records = self.registry.documents(status=PENDING)
        plans = []
        for record in records:
            text = self.registry.text(record.id) or ""
            passages = self.splitter.split(text, record.id)
            updated = DocumentRecord(
                **{**record.__dict__, "n_passages": len(passages), "embedding_model": self.settings.embedding_model}
            )
            plans.append((updated, text, passages))
        total = sum(len(p) for _, _, p in plans)
        done = 0
        with tqdm(total=total, desc="reindexing", unit="passage", disable=not show_progress) as bar:
            for record, text, passages in plans:
                self.registry.begin(record, text, passages)

                def advance(n: int, title: str = record.title) -> None:
                    nonlocal done
                    done += n
                    bar.update(n)
                    if progress:
                        progress(done, total, title)

                self._write(record, passages, advance)
        return total
