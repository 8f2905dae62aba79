"""Answer metrics for one ask question: abstention, keywords, citations, cost.

Whether the assistant answered or declined (and whether that was right: answerable questions
should be answered, unanswerable ones declined; a reply withheld because no citation held up
counts as declined), keyword recall, the citation figures of ``eval.metrics``, whether an
expected source document was cited, and the chain's own timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.qa import Answer
from eval.metrics import GenerationScore, generation_fields
from eval.questions import Question


@dataclass(frozen=True)
class AskScore(GenerationScore):
    withheld: bool
    retrieval_ms: float
    first_token_ms: float | None
    tokens_per_s: float | None
    total_s: float
    text: str
    raw: str


def score_answer(question: Question, answer: Answer) -> AskScore:
    """Scores of ``answer``; figures that make no sense for a decline are None (left out of means)."""
    t = answer.timing
    return AskScore(
        **generation_fields(
            question, answer.text, answer.declined, [c.number for c in answer.citations],
            len(answer.invalid_citations), answer.passages, [Path(c.source).name for c in answer.citations],
        ),  # fmt: skip
        withheld=answer.withheld,
        retrieval_ms=t.retrieval_ms,
        first_token_ms=t.first_token_ms,
        tokens_per_s=t.tokens_per_s or None,
        total_s=t.total_s,
        text=answer.text,
        raw=answer.raw_text,
    )
