"""The library: one object that owns the registry, the vector store and the ingest pipeline.

The CLI, the UI and the API all go through it, so they see the same documents and the
same rules (duplicates, atomic ingest and delete, model mismatch refusal).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from assistant.core.errors import UserError
from assistant.storage.embeddings import embedding_dimension, get_embeddings, load_tokenizer
from assistant.core.settings import Settings
from assistant.storage.store import PassageStore
from ingest.pipeline import Ingestor, ItemResult, ProgressCallback
from assistant.core.passage import Passage
from assistant.storage.registry import COMPLETE, DELETING, PENDING, DocumentRecord, Registry
from ingest.split import PassageSplitter


class UnknownDocumentError(UserError, KeyError):
    """No document with that id."""

    status = 404

    def __str__(self) -> str:
        return f"no document with id {self.args[0]!r}; 'da documents' lists the ids"


class Library:
    """Documents and passages of one data dir (and one Chroma collection)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.registry = Registry(self.settings.registry_database)
        # Every ingest starts by finishing interrupted ones; two at once (an upload while the start-up
        # repair runs, two uploads, another replica's or the CLI's ingest) would rewrite the same
        # pending documents under each other: one writer at a time, in this process and among all
        # that share the registry (``_one_writer``).
        self._writing = threading.RLock()
        self._writing_depth = 0

    @cached_property
    def embeddings(self):
        return get_embeddings(self.settings)

    @cached_property
    def store(self) -> PassageStore:
        return PassageStore(self.settings, self.embeddings, embedding_dimension(self.embeddings))

    @cached_property
    def splitter(self) -> PassageSplitter:
        return PassageSplitter(
            load_tokenizer(self.settings), self.settings.chunk_tokens, self.settings.chunk_overlap_tokens
        )

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(self.settings, self.registry, self.store, self.splitter)

    def ingest(
        self,
        items: list[str] | tuple[str, ...] = (),
        *,
        texts: list[tuple[str, str | None]] | tuple = (),
        uploads: list[tuple[str, str]] | tuple = (),
        progress: ProgressCallback | None = None,
        show_progress: bool = False,
        stance: str | None = None,
    ) -> list[ItemResult]:
        """See ``Ingestor.ingest``; one ingest or repair at a time (see ``_one_writer``)."""
        with self._one_writer():
            return self.ingestor.ingest(items, texts=texts, uploads=uploads, progress=progress,
                                        show_progress=show_progress, stance=stance)  # fmt: skip

    @contextmanager
    def _one_writer(self) -> Iterator[None]:
        """One ingest, repair or reindex at a time: a thread lock here (re-entrant: an ingest finishes
        interrupted ones first), and the registry's lock across processes, taken by the outermost."""
        with self._writing:
            self._writing_depth += 1
            try:
                if self._writing_depth == 1:
                    with self.registry.one_writer():
                        yield
                else:
                    yield
            finally:
                self._writing_depth -= 1

    def stances_to_suggest(self, doc_ids: list[str]) -> list[str]:
        """Those of ``doc_ids`` the model would be asked about (``assistant.chains.stance.suggest_stances``): none unless
        suggestions are on with a model (the local GGUF or an OpenAI-compatible server; the extractive
        baseline has none), so a server queues no job for nothing."""
        if not self.settings.stance_suggestions or self.settings.llm_backend == "extractive":
            return []
        return [doc_id for doc_id in doc_ids if self.needs_suggestion(doc_id)]

    def needs_suggestion(self, doc_id: str) -> bool:
        """A document whose stance nobody confirmed and that has no suggestion yet."""
        record = self.registry.get(doc_id)
        return record is not None and record.stance == "unknown" and not record.suggested_stance

    def set_suggested_stance(self, doc_id: str, stance: str) -> None:
        """Store the model's suggestion for a document (shown as a suggestion; debates never use it)."""
        self.registry.set_suggested_stance(doc_id, stance)

    def set_stance(self, doc_id: str, stance: str) -> DocumentRecord:
        """Confirm which side a document argues (StanceError names the allowed values); no re-embedding."""
        self.document(doc_id)
        self.registry.set_stance(doc_id, stance)
        return self.document(doc_id)

    def documents(self, include_unfinished: bool = False) -> list[DocumentRecord]:
        return self.registry.documents(status=None if include_unfinished else COMPLETE)

    def document(self, doc_id: str) -> DocumentRecord:
        record = self.registry.get(doc_id)
        if record is None:
            raise UnknownDocumentError(doc_id)
        return record

    def require_documents(self, doc_ids: list[str] | tuple[str, ...] | None) -> None:
        """UnknownDocumentError for the first id the library does not hold.

        A search limited to unknown documents would find nothing and the assistant would
        answer "the sources don't say", hiding a typo in the id.
        """
        if not doc_ids:
            return
        known = {d.id for d in self.documents()}
        unknown = [d for d in doc_ids if d not in known]
        if unknown:
            raise UnknownDocumentError(unknown[0])

    def delete(self, doc_id: str) -> DocumentRecord:
        record = self.document(doc_id)
        self.ingestor.delete(doc_id)
        return record

    def passage(self, passage_id: str) -> Passage | None:
        return self.registry.passage(passage_id)

    def finish_interrupted(self) -> list[str]:
        with self._one_writer():
            return self.ingestor.finish_interrupted()

    def repair_in_background(self) -> threading.Thread:
        """At server start: finish ingests and deletes a crash left behind (they would otherwise stay
        pending, unsearchable, until the next upload) and remove upload folders a killed process left
        in the temp folder. In a thread, so the server answers meanwhile; an upload waits its turn."""

        def repair() -> None:
            try:
                remove_stale_upload_folders()
                if self.registry.documents(status=PENDING) or self.registry.documents(status=DELETING):
                    for line in self.finish_interrupted():
                        print(f"repaired: {line}", file=sys.stderr, flush=True)
            except Exception as exc:  # the next ingest tries again; the server must still start
                print(f"start-up repair failed ({type(exc).__name__}: {exc}); the next ingest retries it",
                      file=sys.stderr, flush=True)  # fmt: skip

        thread = threading.Thread(target=repair, name="library-repair", daemon=True)
        thread.start()
        return thread

    def reindex(self, show_progress: bool = False, progress: ProgressCallback | None = None) -> int:
        """Rebuild the vector collection for the configured model, from the registry alone.

        Documents are marked pending before the old collection is dropped, so an interrupted
        reindex never leaves a document listed as complete whose vectors are gone.
        """
        dimension = embedding_dimension(self.embeddings)  # a model that fails to load changes nothing
        with self._one_writer():
            self.registry.mark_all_pending()
            store = PassageStore.rebuild(self.settings, self.embeddings, dimension)
            self.__dict__["store"] = store
            self.__dict__["ingestor"] = Ingestor(self.settings, self.registry, store, self.splitter)
            return self.ingestor.reindex(show_progress=show_progress, progress=progress)

    def close(self) -> None:
        self.registry.close()


UPLOAD_FOLDER_PREFIX = "da-upload-"
_PROCESS_STARTED = time.time()


@contextmanager
def upload_folder() -> Iterator[Path]:
    """A temporary folder for one request's uploads, removed afterwards; its name carries this
    process's id so that a later start can tell the folders of a killed process (see below)."""
    with tempfile.TemporaryDirectory(prefix=f"{UPLOAD_FOLDER_PREFIX}{os.getpid()}-") as folder:
        yield Path(folder)


def remove_stale_upload_folders() -> list[Path]:
    """Remove upload folders whose process is gone (killed mid-upload: no clean-up ran)."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{UPLOAD_FOLDER_PREFIX}*"):
        if folder.is_dir() and _stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _stale(folder: Path) -> bool:
    pid_text, dash, _ = folder.name.removeprefix(UPLOAD_FOLDER_PREFIX).partition("-")
    if not (dash and pid_text.isdigit()):  # a folder without a process id (older versions): stale after an hour
        return folder.stat().st_mtime < time.time() - 3600
    pid = int(pid_text)
    if pid == os.getpid():  # ours, or a killed predecessor's with the same id (pid 1 in a container)
        return folder.stat().st_mtime < _PROCESS_STARTED
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
