"""Retrieval metrics: are the expected quotes among the top-k passages, and how high?

Per question: the share of expected quotes found inside a retrieved passage (recall@k, after
quote and whitespace normalisation), whether all were found, the reciprocal rank of the first
passage holding any expected quote, and the retrieval time. Ask questions are searched as asked;
debate questions by the sources the debate actually reads: both sides' searches (motion plus
each side's search words, ``DebateChain.gather_sources``) interleaved into one numbered list,
whose first k are scored, so the figure describes what the speakers get to read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from assistant.core import personas
from assistant.chains.debate import gather_sources
from assistant.core.passage import Passage
from assistant.retrieval.retrieval import HybridRetriever
from eval.questions import Question, normalize_for_match


@dataclass(frozen=True)
class RetrievalScore:
    id: str
    mode: str
    recall: float
    all_found: bool
    reciprocal_rank: float
    retrieval_ms: float
    retrieved: list[str]


def score_question(question: Question, passages: list[str], passage_ids: list[str], retrieval_ms: float = 0.0) -> RetrievalScore:
    texts = [normalize_for_match(p) for p in passages]
    quotes = [normalize_for_match(q) for q in question.expected_quotes]
    found = [any(q in t for t in texts) for q in quotes]
    first = next((rank for rank, t in enumerate(texts, start=1) if any(q in t for q in quotes)), None)
    return RetrievalScore(
        id=question.id,
        mode=question.mode,
        recall=sum(found) / len(found) if found else 0.0,
        all_found=bool(found) and all(found),
        reciprocal_rank=1.0 / first if first else 0.0,
        retrieval_ms=retrieval_ms,
        retrieved=passage_ids,
    )


def is_scored(question: Question) -> bool:
    """Only answerable questions with expected quotes have a retrieval target."""
    return question.answerable and bool(question.expected_quotes)


def retrieve_for(retriever: HybridRetriever, question: Question, k: int) -> list[Passage]:
    """What the product reads for this question: the ask search, or the debate's shared sources."""
    if question.mode == "debate":
        passages, _ = gather_sources(
            retriever, question.question, personas.ADVOCATE, personas.SKEPTIC, retriever.settings.debate_k_per_side
        )
        return passages[:k]
    return retriever.retrieve(question.question, k)


def score_retrieval(retriever: HybridRetriever, question: Question, k: int) -> RetrievalScore:
    started = time.perf_counter()
    hits = retrieve_for(retriever, question, k)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return score_question(question, [h.text for h in hits], [h.id for h in hits], elapsed_ms)
