"""Hybrid retrieval: dense (Chroma) + BM25, fused by reciprocal rank fusion, optional MMR.

Dense vectors find paraphrases, BM25 finds exact names and numbers; RRF combines the two
rankings without having to calibrate their scores against each other. MMR (optional)
trades a little relevance for variety so that k passages are not k near-copies.
Only passages of complete documents are returned: an ingest in progress is invisible.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from assistant.core.inputs import validate_query
from assistant.storage.lexical import LexicalIndex
from assistant.retrieval.query import named_documents, search_text
from assistant.core.settings import Settings
from assistant.storage.library import Library
from assistant.core.passage import Passage, offered_text, passage_id
from assistant.storage.registry import DocumentRecord

Mode = Literal["hybrid", "dense", "bm25"]
def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int) -> dict[str, float]:
    """score(id) = sum over rankings of 1 / (k + rank), rank counted from 1."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return fused


class _Snapshot:
    """Passages of complete documents and their BM25 index at one registry generation."""

    def __init__(self, generation: int, passages: list[Passage], documents: list[DocumentRecord]) -> None:
        self.generation = generation
        self.passages = {p.id: p for p in passages}
        self.documents = {d.id: d for d in documents}
        self.lexical = LexicalIndex([p.id for p in passages], [p.text for p in passages])


class HybridRetriever:
    """Ranks the library's passages for a query; safe to share between threads."""

    def __init__(self, library: Library, settings: Settings | None = None) -> None:
        """``settings``: those of the chains built on this retriever, when they differ from the library's
        in what only generation reads (an eval configuration, a benchmark's answer mode)."""
        self.library = library
        self.settings = settings or library.settings
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def _current(self) -> _Snapshot:
        generation = self.library.registry.generation()
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = _Snapshot(*self.library.registry.snapshot())  # one consistent read
            return self._snapshot

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        *,
        doc_ids: Sequence[str] | None = None,
        mode: Mode | None = None,
        use_mmr: bool | None = None,
    ) -> list[Passage]:
        """The top ``k`` passages for ``query``, optionally only from the documents ``doc_ids``.

        The query is searched without its instruction words; when it names authors or
        publishers (and no ``doc_ids`` are given), a ranking restricted to each named document
        joins the fusion, so "What does Lee say ..." ranks Lee's article first and a
        comparison of two named articles finds both (``assistant.retrieval.query``).
        """
        query = search_text(validate_query(query, self.settings.max_question_chars))
        k = k or self.settings.retrieval_k
        mode = mode or self.settings.retrieval_mode
        use_mmr = self.settings.use_mmr if use_mmr is None else use_mmr
        snapshot = self._current()
        if not snapshot.passages:
            return []
        candidates = max(self.settings.candidate_k, k * 3 if use_mmr else k)
        query_vector = self.library.embeddings.embed_query(query) if mode in ("hybrid", "dense") or use_mmr else None
        main = self._rank(snapshot, query, query_vector, mode, candidates, doc_ids)
        rankings = main.lists()
        if doc_ids is None:
            for named in named_documents(query, snapshot.documents.values()):
                rankings += self._rank(snapshot, query, query_vector, mode, candidates, [named]).lists()
        fused = reciprocal_rank_fusion(rankings, self.settings.rrf_k)
        ranked = sorted(fused, key=lambda pid: (-fused[pid], pid))
        if use_mmr and query_vector is not None and len(ranked) > k:
            ranked = self._diversify(ranked[:candidates], query_vector, k)
        return [main.result(snapshot, pid, fused[pid]) for pid in ranked[:k]]

    def next_passage(self, passage: Passage) -> Passage | None:
        """The passage that follows ``passage`` in its document, if that document is still searchable."""
        snapshot = self._current()
        following = passage_id(passage.doc_id, passage.index + 1)
        if following not in snapshot.passages:
            return None
        return _Rankings().result(snapshot, following, 0.0)

    def _rank(
        self,
        snapshot: _Snapshot,
        query: str,
        query_vector: list[float] | None,
        mode: Mode,
        candidates: int,
        doc_ids: Sequence[str] | None,
    ) -> _Rankings:
        """The dense and BM25 rankings of ``query`` over complete documents (or only ``doc_ids``)."""
        rankings = _Rankings()
        if mode in ("hybrid", "dense") and query_vector is not None:
            for hit in self.library.store.search(query_vector, candidates, doc_ids=doc_ids):
                if hit.passage_id in snapshot.passages:  # complete documents only
                    rankings.dense.append(hit.passage_id)
                    rankings.dense_similarity[hit.passage_id] = hit.similarity
        if mode in ("hybrid", "bm25"):
            allowed = None
            if doc_ids is not None:
                wanted = set(doc_ids)
                allowed = [pid for pid, p in snapshot.passages.items() if p.doc_id in wanted]
            for lexical_hit in snapshot.lexical.search(query, candidates, allowed_ids=allowed):
                rankings.lexical.append(lexical_hit.passage_id)
                rankings.lexical_score[lexical_hit.passage_id] = lexical_hit.score
        return rankings

    def _diversify(self, pool: list[str], query_vector: list[float], k: int) -> list[str]:
        """MMR over ``pool``: a little relevance traded for variety."""
        vectors = self.library.store.vectors(pool)
        pool = [pid for pid in pool if pid in vectors]
        order = maximal_marginal_relevance(
            np.array(query_vector), [vectors[pid] for pid in pool], lambda_mult=self.settings.mmr_lambda, k=k
        )
        return [pool[i] for i in order]


@dataclass
class _Rankings:
    """One search's dense and BM25 rankings, with the scores shown to the user."""

    dense: list[str] = field(default_factory=list)
    dense_similarity: dict[str, float] = field(default_factory=dict)
    lexical: list[str] = field(default_factory=list)
    lexical_score: dict[str, float] = field(default_factory=dict)

    def lists(self) -> list[list[str]]:
        return [r for r in (self.dense, self.lexical) if r]

    def result(self, snapshot: _Snapshot, pid: str, score: float) -> Passage:
        passage = snapshot.passages[pid]
        document = snapshot.documents[passage.doc_id]
        dense_rank = self.dense.index(pid) + 1 if pid in self.dense_similarity else None
        lexical_rank = self.lexical.index(pid) + 1 if pid in self.lexical_score else None
        return replace(
            passage,
            title=document.title,
            source=document.source,
            author=document.author,
            publisher=document.publisher,
            date=document.date,
            url=document.url,
            stance=document.stance,
            lead_in=_lead_in(snapshot, passage),
            score=score,
            dense_rank=dense_rank,
            dense_similarity=self.dense_similarity.get(pid),
            lexical_rank=lexical_rank,
            lexical_score=self.lexical_score.get(pid),
        )


LEAD_IN_CHARS = 400


def _lead_in(snapshot: _Snapshot, passage: Passage) -> str:
    """The last ``LEAD_IN_CHARS`` of the passage before ``passage`` in its document, if any (without
    sentences set aside at ingest: the verifier's judge reads the lead-in's last sentence)."""
    previous = snapshot.passages.get(passage_id(passage.doc_id, passage.index - 1)) if passage.index else None
    return offered_text(previous)[-LEAD_IN_CHARS:] if previous is not None else ""
