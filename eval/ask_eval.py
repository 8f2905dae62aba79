"""Answer metrics for one ask question: abstention, keywords, citations, cost.

Whether the model answered, declined, or had its reply withheld by the checker (see
``eval.metrics`` for how each counts), keyword recall, the citation figures of
``eval.metrics``, whether an expected source document was cited, and the chain's own timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.chains.ask_events import Answer
from eval.metrics import GenerationScore, generation_fields
from eval.questions import Question


@dataclass(frozen=True)
class AskScore(GenerationScore):
    retrieval_ms: float
    first_token_ms: float | None
    tokens_per_s: float | None
    total_s: float
    verify_ms: float
    answers_question: bool | None  # the product's relevance check (None: it did not run)
    relevance_reason: str
    text: str
    raw: str
    sentences: list


def score_answer(question: Question, answer: Answer) -> AskScore:
    """Scores of ``answer``; figures that make no sense for a decline are None (left out of means)."""
    t = answer.timing
    return AskScore(
        **generation_fields(
            question, answer.text, answer.raw_text, answer.declined and not answer.withheld, answer.withheld,
            [c.number for c in answer.citations], answer.passages, [Path(c.source).name for c in answer.citations],
            answer.not_an_answer,
        ),  # fmt: skip
        answers_question=answer.answers_question,
        relevance_reason=answer.relevance_reason,
        retrieval_ms=t.retrieval_ms,
        first_token_ms=t.first_token_ms,
        tokens_per_s=t.tokens_per_s or None,
        total_s=t.total_s,
        verify_ms=t.verify_ms,
        text=answer.text,
        raw=answer.raw_text,
        sentences=[s.as_dict() for s in answer.sentences],
    )
