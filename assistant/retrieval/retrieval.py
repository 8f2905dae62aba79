"""Hybrid retrieval: dense (Chroma) + BM25, fused by reciprocal rank fusion, optional MMR.

Dense vectors find paraphrases, BM25 finds exact names and numbers; RRF combines the two
rankings without having to calibrate their scores against each other. MMR (optional)
trades a little relevance for variety so that k passages are not k near-copies.
Only passages of complete documents are returned: an ingest in progress is invisible.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from assistant.core.errors import UserError
from assistant.storage.lexical import LexicalIndex
from assistant.core.prompts import clean_user_text
from assistant.retrieval.query import named_documents, search_text
from assistant.core.settings import Settings
from assistant.storage.library import Library
from assistant.core.passage import Passage, offered_text, passage_id
from assistant.storage.registry import DocumentRecord

Mode = Literal["hybrid", "dense", "bm25"]
_SURROGATE = re.compile("[\ud800-\udfff]")


class QueryError(UserError, ValueError):
    """The query cannot be searched (empty, too long)."""


def _invisible(ch: str) -> bool:
    """Characters that show nothing: whitespace and format characters (zero-width space and
    joiners, the byte-order mark, bidi marks, soft hyphen; Unicode category Cf)."""
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def validate_text(text: str, max_chars: int, what: str = "question", allow_empty: bool = False) -> str:
    """The cleaned, trimmed ``text``, or QueryError (a 422 at the API) saying what is wrong with the ``what``.

    The one check every piece of user text passes before it reaches retrieval, a prompt or the
    model queue, on every surface (CLI, API, UI, eval): control characters, terminal escapes and
    chat-template tokens are removed (``prompts.clean_user_text``); text that cannot be encoded
    (a lone surrogate such as ``"\\ud800"``, which JSON allows) is refused; text with nothing
    visible (only spaces, zero-width characters or a BOM) is empty; and it has a length limit.
    """
    text = clean_user_text(text or "")
    if _SURROGATE.search(text):
        raise QueryError(f"the {what} is not valid Unicode text (it contains a lone surrogate code point)")
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    text = text[start:end]
    if not text and not allow_empty:
        raise QueryError(f"the {what} is empty")
    if len(text) > max_chars:
        raise QueryError(f"the {what} is {len(text)} characters long; the limit is {max_chars}")
    return text


def validate_query(query: str, max_chars: int) -> str:
    """A question, query or motion checked by ``validate_text``."""
    return validate_text(query, max_chars)


def validate_history(history: Sequence[Sequence[str]], max_chars: int) -> list[tuple[str, str]]:
    """Earlier (question, answer) pairs, each text checked like a question (empty allowed), so that
    a huge history turn is refused up front with a message that names the history."""
    checked: list[tuple[str, str]] = []
    for number, pair in enumerate(history, start=1):
        if len(pair) != 2:
            raise QueryError(f"history item {number} must be a [question, answer] pair")
        question, answer = (
            validate_text(text, max_chars, f"{part} of history item {number}", allow_empty=True)
            for part, text in zip(("question", "answer"), pair)
        )
        checked.append((question, answer))
    return checked


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
