"""The vector store: passages and their embeddings in a Chroma collection.

Chroma runs embedded (``PersistentClient`` in the data dir) or as a server (``HttpClient``),
chosen by ``settings.store_mode``; nothing else in the code knows which. Embeddings are
always passed in explicitly (Chroma's default embedding function would download a model)
and telemetry is off. The collection records which embedding model filled it; opening it
with another model is refused, since mixing vector spaces silently ruins retrieval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import chromadb
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from assistant.settings import Settings

MODEL_KEY = "embedding_model"
DIM_KEY = "embedding_dim"


class EmbeddingMismatchError(RuntimeError):
    """The collection was built with a different embedding model than the one configured."""


@dataclass(frozen=True)
class DenseHit:
    passage_id: str
    doc_id: str
    similarity: float


def make_client(settings: Settings) -> chromadb.ClientAPI:
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.store_mode == "http":
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
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
        self._vectors = Chroma(
            client=self._client, collection_name=settings.collection, embedding_function=embeddings
        )

    def _open_collection(self) -> chromadb.Collection:
        try:
            collection = self._client.get_collection(self._settings.collection)
        except Exception:  # chromadb raises NotFoundError (http) or ValueError (embedded)
            return self._client.create_collection(
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
            client.delete_collection(settings.collection)
        except Exception:  # absent already
            pass
        return cls(settings, embeddings, dimension, client=client)

    def add(self, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict]) -> None:
        """Embed and upsert; the same ids overwrite, so re-adding a document is idempotent."""
        self._vectors.add_texts(texts=list(texts), metadatas=list(metadatas), ids=list(ids))

    def delete_document(self, doc_id: str) -> None:
        self._collection.delete(where={"doc_id": doc_id})

    def ids_for_document(self, doc_id: str) -> list[str]:
        return list(self._collection.get(where={"doc_id": doc_id}, include=[])["ids"])

    def count(self) -> int:
        return self._collection.count()

    def search(self, query_vector: Sequence[float], k: int, doc_ids: Sequence[str] | None = None) -> list[DenseHit]:
        """Nearest passages by cosine similarity, optionally within some documents."""
        if k <= 0 or self.count() == 0:
            return []
        where = None
        if doc_ids is not None:
            if not doc_ids:
                return []
            where = {"doc_id": {"$in": list(doc_ids)}}
        result = self._collection.query(
            query_embeddings=[list(query_vector)],
            n_results=min(k, self.count()),
            where=where,
            include=["metadatas", "distances"],
        )
        return [
            DenseHit(passage_id=pid, doc_id=str(meta["doc_id"]), similarity=1.0 - float(distance))
            for pid, meta, distance in zip(result["ids"][0], result["metadatas"][0], result["distances"][0])
        ]

    def vectors(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored embeddings by passage id (for MMR)."""
        if not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
        return {pid: list(vector) for pid, vector in zip(got["ids"], got["embeddings"])}
