"""Retrieval metrics on a question set: are the expected quotes among the top-k passages?

Per question: the share of expected quotes found in the top k (recall@k), whether all
were found, and the reciprocal rank of the first passage holding any expected quote.
Run as ``python -m eval.retrieval_eval --corpus DIR --questions FILE`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from eval.questions import Question, load_questions, normalize_for_match


@dataclass(frozen=True)
class RetrievalScore:
    id: str
    recall: float
    all_found: bool
    reciprocal_rank: float
    retrieved: list[str]


def score_question(question: Question, passages: list[str], passage_ids: list[str]) -> RetrievalScore:
    texts = [normalize_for_match(p) for p in passages]
    quotes = [normalize_for_match(q) for q in question.expected_quotes]
    found = [any(q in t for t in texts) for q in quotes]
    first = next((rank for rank, t in enumerate(texts, start=1) if any(q in t for q in quotes)), None)
    return RetrievalScore(
        id=question.id,
        recall=sum(found) / len(found) if found else 0.0,
        all_found=bool(found) and all(found),
        reciprocal_rank=1.0 / first if first else 0.0,
        retrieved=passage_ids,
    )


def evaluate_retrieval(retriever, questions: list[Question], k: int, **retrieve_options) -> dict:
    """Scores for every answerable question that has expected quotes, plus their means."""
    scores = []
    for question in questions:
        if not question.answerable or not question.expected_quotes:
            continue
        hits = retriever.retrieve(question.question, k, **retrieve_options)
        scores.append(score_question(question, [h.text for h in hits], [h.id for h in hits]))
    n = len(scores) or 1
    return {
        "k": k,
        "questions": len(scores),
        "recall_at_k": sum(s.recall for s in scores) / n,
        "all_quotes_found_rate": sum(s.all_found for s in scores) / n,
        "mrr": sum(s.reciprocal_rank for s in scores) / n,
        "per_question": [asdict(s) for s in scores],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder of articles to ingest")
    parser.add_argument("--questions", type=Path, required=True, help="question set (JSONL)")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder")
    args = parser.parse_args(argv)

    from assistant.library import Library
    from assistant.retrieval import HybridRetriever
    from assistant.settings import Settings

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="da-eval-"))
    library = Library(Settings(data_dir=data_dir))
    library.ingest([str(args.corpus)])
    report = evaluate_retrieval(HybridRetriever(library), load_questions(args.questions), args.k, mode=args.mode)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
