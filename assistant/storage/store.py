"""The vector store: passages and their embeddings in a Chroma collection.

Chroma runs embedded (``PersistentClient`` in the data dir) or as a server (``HttpClient``),
chosen by ``settings.store_mode``; nothing else in the code knows which. Embeddings are
always passed in explicitly (Chroma's default embedding function would download a model)
and telemetry is off. The collection records which embedding model filled it; opening it
with another model is refused, since mixing vector spaces silently ruins retrieval.

A Chroma server can be down or restarting (a deploy, a crash) while the assistant runs.
Every call to it therefore goes through one bounded retry (``settings.chroma_retry_s``) on
connection-level errors only; if the server stays away, ``StoreUnavailableError`` says which
address failed and what to check, instead of an httpx traceback. Retrying is safe because
every write is an upsert by deterministic id or a delete by document id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import chromadb
import httpx
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from langchain_core.embeddings import Embeddings
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from assistant.core.errors import UserError
from assistant.core.settings import Settings

MODEL_KEY = "embedding_model"
DIM_KEY = "embedding_dim"
log = logging.getLogger(__name__)
T = TypeVar("T")


class EmbeddingMismatchError(UserError, RuntimeError):
    """The collection was built with a different embedding model than the one configured."""

    status = 409


class StoreUnavailableError(UserError, RuntimeError):
    """The Chroma server did not answer within the retry budget; the message names its address."""

    status = 503
    retry_after_s = 10


def is_connection_error(exc: BaseException) -> bool:
    """Failures that a server coming back would fix (refused, reset, dropped mid-request).

    HTTP error statuses are not included: a server that answers with an error is up, and
    repeating the same request would only repeat the error. ``chromadb.HttpClient`` re-raises
    a connection failure during its first request as a ``ValueError``; the cause is kept.
    """
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, ValueError) and isinstance(exc.__context__, httpx.TransportError)


def call_store(settings: Settings, operation: Callable[..., T], /, *args, **kwargs) -> T:
    """Run one Chroma call, retrying connection errors for up to ``settings.chroma_retry_s`` seconds.

    The one place that retries, so every store operation (and client creation) behaves the
    same when a Chroma server restarts. Embedded mode never raises connection errors, so the
    retry costs nothing there.
    """
    address = f"{settings.chroma_host}:{settings.chroma_port}"

    def warn(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "Chroma server at %s not reachable (%s); retrying for up to %g s",
            address, type(exc).__name__, settings.chroma_retry_s,
        )  # fmt: skip

    retrying = Retrying(
        retry=retry_if_exception(is_connection_error),
        stop=stop_after_delay(settings.chroma_retry_s),
        wait=wait_exponential(multiplier=0.25, max=2.0),
        before_sleep=warn,
        reraise=True,
    )
    try:
        return retrying(operation, *args, **kwargs)
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        raise StoreUnavailableError(
            f"cannot reach the Chroma server at {address} "
            f"(tried for {settings.chroma_retry_s:g} s): is `chroma run` running? "
            f"Check DA_CHROMA_HOST/DA_CHROMA_PORT. ({type(exc).__name__}: {exc})"
        ) from exc


@dataclass(frozen=True)
class DenseHit:
    passage_id: str
    doc_id: str
    similarity: float


def make_client(settings: Settings) -> chromadb.ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.store_mode == "http":
        host, port = settings.chroma_host, settings.chroma_port
        return call_store(settings, chromadb.HttpClient, host=host, port=port, settings=chroma_settings)
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


class PassageStore:
    """Write, delete and query passage vectors; one instance per (settings, embeddings)."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings,
        dimension: int,
        *,
        client: chromadb.ClientAPI | None = None,
    ) -> None:
        self._settings = settings
        self._embeddings = embeddings
        self._client = client or make_client(settings)
        self._expected = {MODEL_KEY: settings.embedding_model, DIM_KEY: dimension}
        self._collection = self._open_collection()

    def _call(self, operation: Callable[..., T], /, *args, **kwargs) -> T:
        return call_store(self._settings, operation, *args, **kwargs)

    def _open_collection(self) -> chromadb.Collection:
        # Only "no such collection" means create it: a connection error must not be mistaken
        # for an absent collection (the retry handles it).
        try:
            collection = self._call(self._client.get_collection, self._settings.collection)
        except (NotFoundError, ValueError):  # ValueError: older chromadb releases
            return self._call(
                self._client.create_collection,
                self._settings.collection,
                metadata=dict(self._expected),
                configuration={"hnsw": {"space": "cosine"}},
            )
        found = collection.metadata or {}
        if found.get(MODEL_KEY) != self._expected[MODEL_KEY] or found.get(DIM_KEY) != self._expected[DIM_KEY]:
            raise EmbeddingMismatchError(
                f"The passage index was built with embedding model {found.get(MODEL_KEY)!r} "
                f"(dimension {found.get(DIM_KEY)}), but settings name {self._expected[MODEL_KEY]!r} "
                f"(dimension {self._expected[DIM_KEY]}). Run 'da reindex' to rebuild the index from the "
                f"document registry with the new model, or set DA_EMBEDDING_MODEL back."
            )
        return collection

    @classmethod
    def rebuild(cls, settings: Settings, embeddings: Embeddings, dimension: int) -> "PassageStore":
        """Drop the collection (whatever model built it) and open an empty one for the configured model."""
        client = make_client(settings)
        try:
            call_store(settings, client.delete_collection, settings.collection)
        except (NotFoundError, ValueError):  # absent already
            pass
        return cls(settings, embeddings, dimension, client=client)

    def add(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict]) -> None:
        """Embed and upsert; the same ids overwrite, so re-adding a document is idempotent.

        Embedding happens once, outside the retried call, so a server restart costs a resend,
        not a second pass through the embedding model.
        """
        self.upsert_vectors(ids, self._embeddings.embed_documents(list(texts)), texts, metadatas)

    def upsert_vectors(
        self, ids: Sequence[str], vectors: Sequence[Sequence[float]], texts: Sequence[str], metadatas: Sequence[dict]
    ) -> None:
        """Upsert passages whose vectors are already computed (``add``; benchmarks fill synthetic ones)."""
        self._call(
            self._collection.upsert, ids=list(ids), embeddings=vectors, metadatas=list(metadatas), documents=list(texts)
        )

    def delete_document(self, doc_id: str) -> None:
        self._call(self._collection.delete, where={"doc_id": doc_id})

    def all_ids(self) -> list[str]:
        """Every passage id in the collection (for consistency checks against the registry)."""
        return list(self._call(self._collection.get, include=[])["ids"])

    def count(self) -> int:
        return self._call(self._collection.count)

    def search(self, query_vector: Sequence[float], k: int, doc_ids: Sequence[str] | None = None) -> list[DenseHit]:
        """Nearest passages by cosine similarity, optionally within some documents."""
        if k <= 0 or self.count() == 0:
            return []
        where = None
        if doc_ids is not None:
            if not doc_ids:
                return []
            where = {"doc_id": {"$in": list(doc_ids)}}
        result = self._call(
            self._collection.query,
            query_embeddings=[list(query_vector)],
            n_results=min(k, self.count()),
            where=where,
            include=["metadatas", "distances"],
        )
        # Both fields were asked for in include=; Chroma's types make every optional field Optional.
        metadatas = cast("list[list[Mapping[str, Any] | None]]", result["metadatas"])
        distances = cast("list[list[float]]", result["distances"])
        # A query that runs while a document is deleted can get a vector whose metadata is already
        # gone (None): that passage is on its way out, so it is skipped rather than failing the search.
        return [
            DenseHit(passage_id=pid, doc_id=str(meta["doc_id"]), similarity=1.0 - float(distance))
            for pid, meta, distance in zip(result["ids"][0], metadatas[0], distances[0])
            if meta is not None
        ]

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored embeddings by passage id (for MMR)."""
        if not ids:
            return {}
        got = self._call(self._collection.get, ids=list(ids), include=["embeddings"])
        stored = cast("Iterable[Sequence[float]]", got["embeddings"])  # asked for in include=
        return {pid: list(vector) for pid, vector in zip(got["ids"], stored)}
