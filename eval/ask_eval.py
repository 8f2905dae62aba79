"""Answer metrics on the ask questions of a question set.

Per question: whether the assistant answered or declined (and whether that was right),
keyword recall (each expected keyword is a ``|``-separated list of alternatives; one
match counts), citation validity (valid markers / all markers the model wrote), citation
support (share of cited passages that contain an expected quote or support their
sentence by ``assistant.support``), whether an expected source document was cited, the
share of answer sentences with a citation, and the timing of the chain.
Run as ``python -m eval.ask_eval --corpus DIR --questions FILE [--backend B]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.citations import split_sentences
from assistant.grounding import evidence_text
from assistant.qa import Answer, AskChain
from assistant.support import support_score
from eval.questions import Question, load_questions, normalize_for_match


@dataclass(frozen=True)
class AskScore:
    id: str
    answerable: bool
    declined: bool
    withheld: bool
    abstention_correct: bool
    keyword_recall: float
    citation_validity: float
    citation_support: float
    cited_expected_source: bool
    cited_sentence_share: float
    retrieval_ms: float
    first_token_ms: float | None
    tokens_per_s: float
    total_s: float
    answer: str
    raw: str


def keyword_recall(text: str, keywords: list[str]) -> float:
    if not keywords:
        return 1.0
    haystack = normalize_for_match(text)
    hits = [any(normalize_for_match(alt) in haystack for alt in group.split("|")) for group in keywords]
    return sum(hits) / len(hits)


def _cited_passage_supported(answer: Answer, number: int, quotes: list[str]) -> bool:
    passage = answer.passages[number - 1]
    if any(normalize_for_match(q) in normalize_for_match(passage.text) for q in quotes):
        return True
    sentences = [s for s in split_sentences(answer.text) if f"[{number}]" in s]
    return any(support_score(s, [evidence_text(passage)]).supported for s in sentences)


def score_answer(question: Question, answer: Answer) -> AskScore:
    n_valid = len(re.findall(r"\[\d+\]", answer.text)) if not answer.declined else 0
    n_markers = n_valid + len(answer.invalid_citations)
    cited = [c.number for c in answer.citations]
    sentences = split_sentences(answer.text)
    t = answer.timing
    return AskScore(
        id=question.id,
        answerable=question.answerable,
        declined=answer.declined,
        withheld=answer.withheld,
        abstention_correct=answer.declined != question.answerable,
        keyword_recall=0.0 if answer.declined else keyword_recall(answer.text, question.expected_keywords),
        citation_validity=n_valid / n_markers if n_markers else 1.0,
        citation_support=(
            sum(_cited_passage_supported(answer, n, question.expected_quotes) for n in cited) / len(cited) if cited else 0.0
        ),
        cited_expected_source=any(Path(c.source).name in question.expected_sources for c in answer.citations),
        cited_sentence_share=(
            sum(bool(re.search(r"\[\d+\]", s)) for s in sentences) / len(sentences) if sentences and not answer.declined else 0.0
        ),
        retrieval_ms=t.retrieval_ms,
        first_token_ms=t.first_token_ms,
        tokens_per_s=t.tokens_per_s,
        total_s=t.total_s,
        answer=answer.text,
        raw=answer.raw_text,
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate_ask(chain: AskChain, questions: list[Question], k: int | None = None, progress=None) -> dict:
    """Scores for every ask-mode question, plus aggregates."""
    scores: list[AskScore] = []
    for question in [q for q in questions if q.mode == "ask"]:
        scores.append(score_answer(question, chain.ask(question.question, k=k)))
        if progress:
            progress(scores[-1])
    answerable = [s for s in scores if s.answerable]
    answered = [s for s in scores if not s.declined]
    return {
        "questions": len(scores),
        "abstention_accuracy": _mean([s.abstention_correct for s in scores]),
        "answered_rate_answerable": _mean([not s.declined for s in answerable]),
        "keyword_recall_answerable": _mean([s.keyword_recall for s in answerable]),
        "citation_validity": _mean([s.citation_validity for s in scores]),
        "citation_support_answered": _mean([s.citation_support for s in answered]),
        "cited_expected_source_answerable": _mean([s.cited_expected_source for s in answerable]),
        "cited_sentence_share_answered": _mean([s.cited_sentence_share for s in answered]),
        "first_token_ms_mean": _mean([s.first_token_ms for s in scores if s.first_token_ms is not None]),
        "tokens_per_s_mean": _mean([s.tokens_per_s for s in scores if s.tokens_per_s]),
        "per_question": [asdict(s) for s in scores],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder of articles to ingest")
    parser.add_argument("--questions", type=Path, required=True, help="question set (JSONL)")
    parser.add_argument("-k", type=int, default=None)
    parser.add_argument("--backend", choices=["llamacpp", "openai", "extractive"], default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a fresh temporary folder")
    args = parser.parse_args(argv)

    from assistant.library import Library
    from assistant.llm import make_chat_model
    from assistant.retrieval import HybridRetriever
    from assistant.settings import Settings

    overrides = {"data_dir": args.data_dir or Path(tempfile.mkdtemp(prefix="da-eval-"))}
    if args.backend:
        overrides["llm_backend"] = args.backend
    settings = Settings(**overrides)
    library = Library(settings)
    library.ingest([str(args.corpus)])
    chain = AskChain(HybridRetriever(library), make_chat_model(settings))

    def show(score: AskScore) -> None:
        verdict = "declined" if score.declined else "answered"
        print(f"{score.id}: {verdict} ok={score.abstention_correct} kw={score.keyword_recall:.2f} "
              f"support={score.citation_support:.2f} | {score.answer[:160]!r}", file=sys.stderr)  # fmt: skip

    report = evaluate_ask(chain, load_questions(args.questions), args.k, progress=show)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
