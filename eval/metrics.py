"""Scores shared by answers and debate turns: keyword recall and the three citation figures.

Definitions (the README's "Evaluation" section repeats them):
- **keyword recall**: each expected keyword is a ``|``-separated list of alternatives; a
  group counts if any alternative occurs in the text (case, quotes and spacing ignored).
- **citation validity**: markers that name an existing passage / all markers the model wrote
  (invalid ones were removed before display, so they are counted from the checker's report).
- **citation support**: share of cited passages that contain an expected quote, or that
  support at least one sentence citing them by ``assistant.support.support_score``
  (deterministic: stemmed word overlap of at least 0.5, and every number and capitalised
  name of the sentence present in the passage).
- **cited sentence share**: sentences carrying at least one ``[n]`` / all sentences.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from assistant.citations import split_sentences
from assistant.grounding import evidence_text
from assistant.prompts import NumberedPassage
from assistant.support import support_score
from eval.questions import Question, normalize_for_match

_VALID_MARKER = re.compile(r"\[\d+\]")


def keyword_recall(text: str, keywords: list[str]) -> float:
    if not keywords:
        return 1.0
    haystack = normalize_for_match(text)
    hits = [any(normalize_for_match(alt) in haystack for alt in group.split("|")) for group in keywords]
    return sum(hits) / len(hits)


@dataclass(frozen=True)
class CitationScores:
    validity: float
    support: float
    cited_sentence_share: float
    cited: int


def _passage_supported(text: str, number: int, passage: NumberedPassage, quotes: Sequence[str]) -> bool:
    if any(normalize_for_match(q) in normalize_for_match(passage.text) for q in quotes):
        return True
    sentences = [s for s in split_sentences(text) if f"[{number}]" in s]
    return any(support_score(s, [evidence_text(passage)]).supported for s in sentences)


def citation_scores(
    text: str, cited: Sequence[int], n_invalid: int, passages: Sequence[NumberedPassage], quotes: Sequence[str]
) -> CitationScores:
    """Score shown ``text`` whose valid citations are ``cited`` (1-based into ``passages``)."""
    n_valid = len(_VALID_MARKER.findall(text))
    n_markers = n_valid + n_invalid
    cited = sorted(set(cited))
    supported = [_passage_supported(text, n, passages[n - 1], quotes) for n in cited]
    sentences = split_sentences(text)
    return CitationScores(
        validity=n_valid / n_markers if n_markers else 1.0,
        support=sum(supported) / len(supported) if supported else 0.0,
        cited_sentence_share=(
            sum(bool(_VALID_MARKER.search(s)) for s in sentences) / len(sentences) if sentences else 0.0
        ),
        cited=len(cited),
    )


@dataclass(frozen=True)
class GenerationScore:
    """What answers and debate turns are scored on alike (None: does not apply, left out of means)."""

    id: str
    mode: str
    answerable: bool
    declined: bool
    abstention_correct: bool
    keyword_recall: float | None
    citation_validity: float
    citation_support: float | None
    cited_sentence_share: float | None
    cited_expected_source: bool | None


def generation_fields(
    question: Question,
    text: str,
    declined: bool,
    cited: Sequence[int],
    n_invalid: int,
    passages: Sequence[NumberedPassage],
    cited_files: Sequence[str],
) -> dict:
    """The ``GenerationScore`` fields for shown ``text`` (``cited_files``: file names of cited passages)."""
    cites = citation_scores("" if declined else text, cited, n_invalid, passages, question.expected_quotes)
    return {
        "id": question.id,
        "mode": question.mode,
        "answerable": question.answerable,
        "declined": declined,
        "abstention_correct": declined != question.answerable,
        "keyword_recall": (0.0 if declined else keyword_recall(text, question.expected_keywords))
        if question.answerable
        else None,
        "citation_validity": cites.validity,
        "citation_support": None if declined else cites.support,
        "cited_sentence_share": None if declined else cites.cited_sentence_share,
        "cited_expected_source": any(name in question.expected_sources for name in cited_files)
        if question.answerable
        else None,
    }


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the values that exist; None when there are none (shown as an empty cell)."""
    present = [float(v) for v in values if v is not None]
    return statistics.fmean(present) if present else None

